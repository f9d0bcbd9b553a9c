"""The backends that make their own codes (console, locmem): Vonage's rules, kept here.

Every rule runs against both: the console backend is what `make run` uses, the
locmem backend is what the rest of the suite uses.
"""

import datetime
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import verification
from verification import get_backend
from verification.backends import console, locmem
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    TooManyAttempts,
    VerificationExpired,
)

from .conftest import NUMBER, OTHER_NUMBER, holds_code, stored_text

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"^\[(?P<channel>sms|voice) to (?P<to>[^\]]+)\] "
    r"(?P<brand>.+) code: (?P<code>\d+)\. Valid for (?P<minutes>\d+) minutes\.$"
)
START = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)


class ConsoleKind:
    """A console backend printing to a buffer, and the messages read back from it."""

    name = "console"

    def __init__(self):
        self.stream = io.StringIO()

    def build(self, **kwargs):
        return console.VerificationBackend(stream=self.stream, **kwargs)

    def sent(self):
        lines = self.stream.getvalue().splitlines()
        parsed = [LINE.match(line) for line in lines]
        assert all(parsed), f"unexpected console output: {lines!r}"
        return [(match["to"], match["channel"], match["code"]) for match in parsed]


class LocmemKind:
    name = "locmem"

    def build(self, **kwargs):
        return locmem.VerificationBackend(**kwargs)

    def sent(self):
        from accounts.phone import mask_phone_number

        return [
            (mask_phone_number(message.number), message.channel, message.code)
            for message in verification.outbox
        ]


@pytest.fixture(params=[ConsoleKind, LocmemKind], ids=["console", "locmem"])
def kind(request):
    return request.param()


@pytest.fixture
def backend(kind):
    return kind.build()


def a_wrong_code(code):
    return f"{(int(code[0]) + 1) % 10}{code[1:]}"


# What the console prints ----------------------------------------------------


def test_console_prints_one_line_per_message_worded_as_vonage_words_it():
    stream = io.StringIO()
    backend = console.VerificationBackend(stream=stream)
    request_id = backend.start(NUMBER)
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 1
    code = LINE.match(lines[0].rstrip("\n"))["code"]
    assert lines[0] == f"[sms to +1 415 ••• ••00] Passwordless code: {code}. Valid for 5 minutes.\n"

    backend.trigger_next(request_id)
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 2
    voice_code = LINE.match(lines[1].rstrip("\n"))["code"]
    assert lines[1] == (
        f"[voice to +1 415 ••• ••00] Passwordless code: {voice_code}. Valid for 5 minutes.\n"
    )


def test_console_never_prints_the_full_number():
    stream = io.StringIO()
    console.VerificationBackend(stream=stream).start(NUMBER)
    line = stream.getvalue().rstrip("\n")
    assert LINE.match(line)["to"] == "+1 415 ••• ••00"
    assert "4155550100" not in line


def test_console_writes_to_standard_output_by_default(capsys):
    console.VerificationBackend().start(NUMBER)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert LINE.match(out.rstrip("\n"))["to"] == "+1 415 ••• ••00"


def test_default_backend_setting_builds_the_console_backend(settings, capsys):
    settings.VERIFICATION_BACKEND = settings.VERIFICATION_BACKENDS["console"]
    backend = get_backend()
    assert isinstance(backend, console.VerificationBackend)
    backend.start(NUMBER)
    assert "Passwordless code: " in capsys.readouterr().out


def test_a_person_logs_in_with_the_code_printed_in_the_terminal(client, settings, capsys):
    """What `make run` offers: the code is read from the terminal and typed in the page."""
    settings.VERIFICATION_BACKEND = settings.VERIFICATION_BACKENDS["console"]
    response = client.post("/login/", {"number": "+1 415 555 0100"})
    assert response["Location"] == "/verify/"
    printed = [LINE.match(line) for line in capsys.readouterr().out.splitlines()]
    [line] = [match for match in printed if match]
    assert (line["channel"], line["to"], line["brand"]) == (
        "sms",
        "+1 415 ••• ••00",
        "Passwordless",
    )
    response = client.post("/verify/", {"code": line["code"]})
    assert response["Location"] == "/"
    assert "Hello +1 415-555-0100" in client.get("/").content.decode()


@pytest.mark.parametrize(("ttl", "minutes"), [(60, 1), (120, 2), (300, 5), (600, 10)])
def test_message_says_how_many_minutes_the_code_lives(kind, settings, ttl, minutes):
    settings.VERIFY_CODE_TTL = ttl
    kind.build().start(NUMBER)
    if kind.name == "console":
        line = kind.stream.getvalue().rstrip("\n")
        assert LINE.match(line)["minutes"] == str(minutes)
    else:
        message = verification.outbox[-1]
        assert message.message == f"Passwordless code: {message.code}. Valid for {minutes} minutes."


def test_brand_comes_from_verify_brand(kind, settings):
    settings.VERIFY_BRAND = "Acme Bank"
    kind.build().start(NUMBER)
    if kind.name == "console":
        assert LINE.match(kind.stream.getvalue().rstrip("\n"))["brand"] == "Acme Bank"
    else:
        assert verification.outbox[-1].message.startswith("Acme Bank code: ")


def test_constructor_arguments_override_settings(kind, settings):
    settings.VERIFY_BRAND = "Acme Bank"
    backend = kind.build(brand="Other", code_length=8, code_ttl=120)
    backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    assert len(code) == 8
    assert backend.message(code) == f"Other code: {code}. Valid for 2 minutes."


def test_brand_falls_back_to_vonage_brand_name_when_verify_brand_is_empty():
    """Run the console backend as `make run` does, configured from the environment only."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONIOENCODING": "utf-8",
        "DJANGO_SETTINGS_MODULE": "passwordless.settings",
        # Every variable is set, so a developer's .env file has no say.
        "DEBUG": "true",
        "SECRET_KEY": "",
        "ALLOWED_HOSTS": "",
        "CACHE_URL": "locmemcache://",
        "VERIFY_BACKEND": "console",
        "VERIFY_BRAND": "",
        "VONAGE_BRAND_NAME": "Acme Bank",
        "VERIFY_CODE_LENGTH": "6",
        "VERIFY_CODE_TTL": "300",
    }
    script = (
        "import django; django.setup()\n"
        "from verification import get_backend\n"
        "get_backend().start('+14155550100')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match, lines
    assert (
        lines[0]
        == f"[sms to +1 415 ••• ••00] Acme Bank code: {match['code']}. Valid for 5 minutes."
    )


# Codes --------------------------------------------------------------------


def test_codes_have_six_digits_by_default(kind):
    backend = kind.build()
    for number in (NUMBER, OTHER_NUMBER, "+14155550101"):
        backend.start(number)
    codes = [code for _to, _channel, code in kind.sent()]
    assert len(codes) == 3
    assert all(len(code) == 6 and code.isascii() and code.isdigit() for code in codes)


def test_code_length_follows_the_setting(kind, settings):
    settings.VERIFY_CODE_LENGTH = 8
    kind.build().start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    assert len(code) == 8


def test_codes_are_not_predictable(kind):
    backend = kind.build()
    for index in range(8):
        backend.start(f"+1415555{index:04d}")
    codes = {code for _to, _channel, code in kind.sent()}
    assert len(codes) > 1


def test_code_is_stored_only_hashed(kind):
    backend = kind.build()
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    text = stored_text()
    # The request is stored (in the shared cache)...
    assert request_id in text
    # ...but the code is nowhere, in any table, cache value or session.
    assert not holds_code(text, code)


def test_the_right_code_succeeds(kind):
    backend = kind.build()
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    result = backend.check(request_id, code)
    assert result.request_id == request_id


def test_a_code_works_once(backend, kind):
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    backend.check(request_id, code)
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


def test_a_code_works_from_another_process_sharing_the_cache(kind):
    """Each web process builds its own backend: the code lives in the shared cache."""
    request_id = kind.build().start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    assert kind.build().check(request_id, code).request_id == request_id


def test_a_code_only_works_for_its_own_request(backend, kind):
    first = backend.start(NUMBER)
    second = backend.start(OTHER_NUMBER)
    first_code = kind.sent()[0][2]
    second_code = kind.sent()[1][2]
    if first_code != second_code:
        with pytest.raises(IncorrectCode):
            backend.check(second, first_code)
    assert backend.check(first, first_code).request_id == first


def test_unknown_request_is_expired(backend):
    with pytest.raises(VerificationExpired):
        backend.check("0" * 32, "123456")


# Expiry -----------------------------------------------------------------------


def test_code_still_works_just_before_the_ttl(backend, kind, time_machine, settings):
    time_machine.move_to(START, tick=False)
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    time_machine.shift(settings.VERIFY_CODE_TTL - 1)
    assert backend.check(request_id, code).request_id == request_id


def test_code_expires_after_the_ttl(backend, kind, time_machine, settings):
    time_machine.move_to(START, tick=False)
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    time_machine.shift(settings.VERIFY_CODE_TTL + 1)
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


def test_ttl_follows_the_setting(kind, time_machine, settings):
    settings.VERIFY_CODE_TTL = 60
    backend = kind.build()
    time_machine.move_to(START, tick=False)
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    time_machine.shift(61)
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


def test_an_expired_request_frees_the_number(backend, kind, time_machine, settings):
    time_machine.move_to(START, tick=False)
    first = backend.start(NUMBER)
    time_machine.shift(settings.VERIFY_CODE_TTL + 1)
    second = backend.start(NUMBER)
    assert second != first
    assert len(kind.sent()) == 2


# Wrong codes ----------------------------------------------------------------


def test_three_wrong_codes_kill_the_request(backend, kind):
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    wrong = a_wrong_code(code)
    with pytest.raises(IncorrectCode) as first:
        backend.check(request_id, wrong)
    assert first.value.attempts_left == 2
    with pytest.raises(IncorrectCode) as second:
        backend.check(request_id, wrong)
    assert second.value.attempts_left == 1
    with pytest.raises(TooManyAttempts):
        backend.check(request_id, wrong)
    # Dead: not even the right code brings it back.
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


def test_a_killed_request_frees_the_number(backend, kind):
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    for _ in range(2):
        with pytest.raises(IncorrectCode):
            backend.check(request_id, a_wrong_code(code))
    with pytest.raises(TooManyAttempts):
        backend.check(request_id, a_wrong_code(code))
    assert backend.start(NUMBER) != request_id


def test_right_code_after_two_wrong_ones_succeeds(backend, kind):
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    for _ in range(2):
        with pytest.raises(IncorrectCode):
            backend.check(request_id, a_wrong_code(code))
    assert backend.check(request_id, code).request_id == request_id


def test_wrong_codes_count_across_backend_instances(kind):
    """Three wrong codes kill the request even when each comes to another process."""
    request_id = kind.build().start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    for _ in range(2):
        with pytest.raises(IncorrectCode):
            kind.build().check(request_id, a_wrong_code(code))
    with pytest.raises(TooManyAttempts):
        kind.build().check(request_id, a_wrong_code(code))


# One live request per number -------------------------------------------------


def test_second_start_for_a_live_number_names_the_live_request(backend, kind):
    live = backend.start(NUMBER)
    with pytest.raises(ConcurrentVerification) as refused:
        backend.start(NUMBER)
    assert refused.value.request_id == live
    # Nothing was sent for the refused start.
    assert len(kind.sent()) == 1


def test_other_numbers_are_not_blocked_by_a_live_request(backend, kind):
    backend.start(NUMBER)
    backend.start(OTHER_NUMBER)
    assert [to for to, _channel, _code in kind.sent()] == ["+1 415 ••• ••00", "+1 415 ••• ••99"]


def test_a_verified_request_frees_the_number(backend, kind):
    request_id = backend.start(NUMBER)
    backend.check(request_id, kind.sent()[0][2])
    assert backend.start(NUMBER) != request_id


# Cancel -------------------------------------------------------------------


def test_cancel_kills_the_code_and_frees_the_number(backend, kind):
    request_id = backend.start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    backend.cancel(request_id)
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)
    assert backend.start(NUMBER) != request_id


def test_cancel_of_a_dead_request_says_so(backend):
    request_id = backend.start(NUMBER)
    backend.cancel(request_id)
    with pytest.raises(VerificationExpired):
        backend.cancel(request_id)
    with pytest.raises(VerificationExpired):
        backend.cancel("0" * 32)


# Next channel (a voice call) ---------------------------------------------------


def test_trigger_next_calls_once_then_is_not_allowed(backend, kind):
    assert backend.supports_next
    request_id = backend.start(NUMBER)
    backend.trigger_next(request_id)
    sent = kind.sent()
    assert [(to, channel) for to, channel, _code in sent] == [
        ("+1 415 ••• ••00", "sms"),
        ("+1 415 ••• ••00", "voice"),
    ]
    with pytest.raises(ActionNotAllowed):
        backend.trigger_next(request_id)
    assert len(kind.sent()) == 2
    # The code read out in the call logs in.
    assert backend.check(request_id, sent[1][2]).request_id == request_id


def test_code_sent_by_sms_still_works_after_a_call(backend, kind):
    """Vonage reads out the same code in the call: the SMS that arrives late still works."""
    request_id = backend.start(NUMBER)
    backend.trigger_next(request_id)
    sms_code = kind.sent()[0][2]
    assert backend.check(request_id, sms_code).request_id == request_id


def test_trigger_next_of_a_dead_request_says_so(backend):
    request_id = backend.start(NUMBER)
    backend.cancel(request_id)
    with pytest.raises(VerificationExpired):
        backend.trigger_next(request_id)


def test_call_keeps_the_original_expiry(backend, kind, time_machine, settings):
    time_machine.move_to(START, tick=False)
    request_id = backend.start(NUMBER)
    time_machine.shift(settings.VERIFY_CODE_TTL - 10)
    backend.trigger_next(request_id)
    voice_code = kind.sent()[1][2]
    time_machine.shift(11)
    with pytest.raises(VerificationExpired):
        backend.check(request_id, voice_code)


# Racing checks ----------------------------------------------------------------


def test_a_check_that_loses_the_race_does_not_log_in(kind):
    """The worst interleaving, forced: both checks have read the request before either ends it."""
    request_id = kind.build().start(NUMBER)
    [(_to, _channel, code)] = kind.sent()
    slow, fast = kind.build(), kind.build()
    outcomes = []
    load = slow._load

    def load_then_let_the_other_check_finish(request_id):
        record = load(request_id)
        outcomes.append(fast.check(request_id, code))
        return record

    slow._load = load_then_let_the_other_check_finish
    with pytest.raises(VerificationExpired):
        slow.check(request_id, code)
    assert [result.request_id for result in outcomes] == [request_id]


RACE_SCRIPT = """
import json, sys, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connections
from verification import get_backend
from verification.backends.console import VerificationBackend

call_command("createcachetable")
backend = VerificationBackend(stream=open("/dev/null", "w"))
rounds = []
for round_number in range(int(sys.argv[1])):
    number = f"+1415555{round_number:04d}"
    codes = []
    backend.deliver = lambda number, message, *, channel, code: codes.append(code)
    request_id = backend.start(number)
    barrier = threading.Barrier(int(sys.argv[2]))
    outcomes = []

    def check():
        each = get_backend()
        barrier.wait()
        try:
            each.check(request_id, codes[0])
            outcomes.append("success")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(int(sys.argv[2]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds.append(sorted(outcomes))
print(json.dumps(rounds))
"""


def test_parallel_correct_checks_succeed_exactly_once(tmp_path):
    """Threads checking the right code at once, on the embedded default (SQLite file cache).

    Run in a child process with its own SQLite file: the in-memory database of
    the test run locks tables instead of waiting, which real SQLite files do not.
    """
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "passwordless.settings",
        "DEBUG": "true",
        "SECRET_KEY": "",
        "ALLOWED_HOSTS": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "CACHE_URL": "dbcache://django_cache",
        "VERIFY_BACKEND": "console",
        "VERIFY_CODE_LENGTH": "6",
        "VERIFY_CODE_TTL": "300",
        "LOG_LEVEL": "WARNING",
    }
    rounds, threads = 8, 4
    result = subprocess.run(
        [sys.executable, "-c", RACE_SCRIPT, str(rounds), str(threads)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout.splitlines()[-1])
    assert outcomes == [sorted(["success"] + ["VerificationExpired"] * (threads - 1))] * rounds
