"""manage.py createphoneuser, verification and purgeverificationlog."""

import datetime
import re
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from verification import CheckResult
from verification.backends.base import SearchResult
from verification.backends.locmem import VerificationBackend as LocmemBackend
from verification.exceptions import ProviderUnavailable
from verificationlog.models import Outcome, Purpose, VerificationLog

from .conftest import NUMBER, last_code
from .embedded_default import embedded_default_env, manage
from .factories import UserFactory
from .factories_log import VerificationLogFactory

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
MASKED = "+1 415 ••• ••00"
THIS_MODULE = __name__


class UnavailableBackend(LocmemBackend):
    """A provider that cannot be reached."""

    def start(self, number):
        raise ProviderUnavailable("connection timed out")


class PricedBackend(LocmemBackend):
    """Reports a price on a right code, as Vonage Verify v1 does."""

    def check(self, request_id, code):
        result = super().check(request_id, code)
        return CheckResult(request_id=result.request_id, price="0.05000000", currency="EUR")


class SearchableBackend(LocmemBackend):
    """Answers a search the way Vonage Verify v1 does, codes typed included."""

    supports_search = True

    def search(self, request_id):
        return SearchResult(
            request_id=request_id,
            status="FAILED",
            number=NUMBER,
            price="0.10000000",
            currency="EUR",
            events=[
                {"type": "sms", "id": "evt-1", "to": NUMBER},
                {"type": "check", "code": "123456", "status": "INVALID"},
            ],
        )


def run(*args, **options):
    """Run a command; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def log_rows():
    return list(VerificationLog.objects.order_by("created_at", "pk"))


# createphoneuser -----------------------------------------------------------------


def test_createphoneuser_makes_a_user_who_logs_in_by_phone():
    out, _ = run("createphoneuser", "+1 (415) 555-0100")

    user = User.objects.get()
    assert user.phone_number_for_2fa == NUMBER
    assert user.username.startswith("user-")
    assert not user.has_usable_password()
    assert not (user.is_staff or user.is_superuser or user.is_2fa_enabled)
    assert f"Created the user {user.username} with the phone {MASKED}." in out
    assert NUMBER not in out


def test_createphoneuser_options():
    out, _ = run(
        "createphoneuser",
        NUMBER,
        "--username",
        "ann",
        "--email",
        "ann@example.com",
        "--enable-2fa",
        "--staff",
    )

    user = User.objects.get(username="ann")
    assert (user.email, user.is_2fa_enabled, user.is_staff, user.is_superuser) == (
        "ann@example.com",
        True,
        True,
        False,
    )
    assert "manage.py changepassword ann" in out


def test_createphoneuser_superuser_is_staff_too():
    run("createphoneuser", NUMBER, "--superuser")

    user = User.objects.get()
    assert user.is_superuser and user.is_staff


def test_createphoneuser_reads_national_numbers_in_the_default_region(settings):
    settings.DEFAULT_PHONE_REGION = "GB"
    run("createphoneuser", "07400 123456")

    assert User.objects.get().phone_number_for_2fa == "+447400123456"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["12"], "Not a valid phone number. Use international format, e.g. +14155550100."),
        (["not a number"], "Not a valid phone number."),
        ([NUMBER], f"{MASKED} already belongs to the user taken."),
        (["+14155550199", "--username", "taken"], "username: A user with that username"),
        (["+14155550199", "--email", "nope"], "email: Enter a valid email address."),
        (["+14155550199", "--username", "a b"], "username: Enter a valid username."),
    ],
)
def test_createphoneuser_errors(args, message):
    UserFactory(username="taken", phone_number_for_2fa=NUMBER)

    with pytest.raises(CommandError, match=re.escape(message)):
        run("createphoneuser", *args)

    assert User.objects.count() == 1


# verification send ---------------------------------------------------------------


def test_send_prints_the_request_id_and_logs_an_operator_event(outbox):
    out, _ = run("verification", "send", "+1 415 555 0100")

    request_id = out.strip().splitlines()[-1]
    assert f"Sent a code to {MASKED} with the locmem backend." in out
    assert NUMBER not in out
    assert [message.number for message in outbox] == [NUMBER]
    (row,) = log_rows()
    assert (row.outcome, row.purpose, row.number, row.request_id) == (
        Outcome.STARTED,
        Purpose.OPERATOR,
        NUMBER,
        request_id,
    )
    assert (row.backend, row.detail, row.ip) == ("locmem", "send", None)


def test_send_quietly_prints_only_the_request_id():
    out, _ = run("verification", "send", NUMBER, verbosity=0)

    assert out.strip() == log_rows()[0].request_id


def test_send_quietly_prints_only_the_request_id_to_a_shell(tmp_path):
    """`RID=$(manage.py verification -v 0 send …)` captures the id and nothing else.

    Run as an operator runs it, on the embedded default (the console
    backend): the site's log lines and the console's message go to stderr,
    the terminal, and stdout carries the command's output alone.
    """
    env = embedded_default_env(tmp_path)
    assert manage(env, "migrate", "--noinput", "-v", "0").returncode == 0

    done = manage(env, "verification", "-v", "0", "send", NUMBER)

    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1, done.stdout
    request_id = done.stdout.strip()
    assert "verification event=started" in done.stderr
    code = re.search(r"\[sms to \+1 415 ••• ••00\] Passwordless code: (\d{6})\.", done.stderr)
    assert code, done.stderr
    checked = manage(env, "verification", "check", request_id, code[1])
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "The code is right.\n"


def test_send_refuses_a_bad_number(outbox):
    with pytest.raises(CommandError, match="Not a valid phone number"):
        run("verification", "send", "555")

    assert outbox == []
    assert log_rows() == []


def test_send_reports_a_provider_failure(settings):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.UnavailableBackend"

    with pytest.raises(CommandError) as caught:
        run("verification", "send", NUMBER)

    assert str(caught.value) == (
        "The provider is unavailable: timeout, network, server error, credentials or "
        "account. (test_commands: connection timed out; status 5)"
    )
    (row,) = log_rows()
    assert (row.outcome, row.detail) == (Outcome.UPSTREAM_ERROR, "send 5")


def test_send_to_a_number_with_a_live_request_names_it():
    first, _ = run("verification", "send", NUMBER)

    with pytest.raises(CommandError, match="already live") as caught:
        run("verification", "send", NUMBER)

    assert f"Its request id: {first.split()[-1]}." in str(caught.value)
    assert log_rows()[-1].outcome == Outcome.REFUSED


# verification check / cancel / next ----------------------------------------------


def sent_request_id():
    out, _ = run("verification", "send", NUMBER)
    return out.split()[-1]


def test_check_a_right_code(outbox):
    request_id = sent_request_id()

    out, _ = run("verification", "check", request_id, last_code(outbox))

    assert out.strip() == "The code is right."
    row = log_rows()[-1]
    assert (row.outcome, row.purpose, row.number, row.request_id, row.detail) == (
        Outcome.SUCCEEDED,
        Purpose.OPERATOR,
        NUMBER,
        request_id,
        "check",
    )


def test_check_prints_the_price_when_the_backend_reports_it(settings, outbox):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.PricedBackend"
    request_id = sent_request_id()

    out, _ = run("verification", "check", request_id, last_code(outbox))

    assert out.strip() == "The code is right. It cost 0.05000000 EUR."
    assert (log_rows()[-1].price, log_rows()[-1].currency) == (Decimal("0.05"), "EUR")


def test_check_a_wrong_code(outbox):
    request_id = sent_request_id()
    code = last_code(outbox)
    wrong = f"{(int(code[0]) + 1) % 10}{code[1:]}"

    with pytest.raises(CommandError, match=r"^Wrong code\. 2 attempts left\. \(locmem: "):
        run("verification", "check", request_id, wrong)

    row = log_rows()[-1]
    assert (row.outcome, row.number, row.detail) == (Outcome.WRONG_CODE, NUMBER, "check 16")


def test_check_an_unknown_request_id():
    with pytest.raises(CommandError, match="No live request with this id"):
        run("verification", "check", "0" * 32, "123456")

    row = log_rows()[-1]
    assert (row.outcome, row.number) == (Outcome.EXPIRED, "")


def test_cancel_stops_the_request(outbox):
    request_id = sent_request_id()

    out, _ = run("verification", "cancel", request_id)

    assert "Cancelled" in out
    assert log_rows()[-1].outcome == Outcome.CANCELLED
    with pytest.raises(CommandError, match="No live request"):
        run("verification", "check", request_id, last_code(outbox))


def test_cancel_an_unknown_request_id():
    with pytest.raises(CommandError, match="No live request with this id"):
        run("verification", "cancel", "f" * 32)


def test_next_moves_the_request_to_a_call(outbox):
    request_id = sent_request_id()

    out, _ = run("verification", "next", request_id)

    assert "Moved to the next channel." in out
    assert [message.channel for message in outbox] == ["sms", "voice"]
    row = log_rows()[-1]
    assert (row.outcome, row.detail) == (Outcome.STARTED, "next")


def test_next_when_there_is_no_next_channel():
    request_id = sent_request_id()
    run("verification", "next", request_id)

    with pytest.raises(CommandError, match="No next channel now"):
        run("verification", "next", request_id)

    assert log_rows()[-1].outcome == Outcome.REFUSED


# verification search -------------------------------------------------------------


def test_search_needs_a_backend_that_supports_it():
    with pytest.raises(CommandError, match="The locmem backend cannot search requests"):
        run("verification", "search", "abc")


def test_search_prints_status_masked_number_events_and_price(settings):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.SearchableBackend"

    out, _ = run("verification", "search", "abc")

    assert out.splitlines() == [
        "Request id: abc",
        "Status: FAILED",
        f"Number: {MASKED}",
        "Price: 0.10000000 EUR",
        "Events:",
        f"  - type=sms, id=evt-1, to={MASKED}",
        "  - type=check, code=(hidden), status=INVALID",
    ]


# verification: set-up errors -----------------------------------------------------


def test_verification_needs_an_action():
    with pytest.raises(CommandError, match="required: ACTION"):
        run("verification")


def test_verification_with_a_backend_that_cannot_be_built(settings):
    settings.VERIFICATION_BACKEND = "tests.no_such_module.VerificationBackend"

    with pytest.raises(CommandError, match="Cannot build the verification backend"):
        run("verification", "send", NUMBER)


# purgeverificationlog ------------------------------------------------------------


def aged(days):
    return VerificationLogFactory(created_at=timezone.now() - datetime.timedelta(days=days))


def test_purge_deletes_rows_older_than_the_retention_setting(settings):
    settings.VERIFY_LOG_RETENTION_DAYS = 90
    kept, _ = aged(89), aged(91)

    out, _ = run("purgeverificationlog")

    assert out.startswith("Deleted 1 verification log rows older than 90 days (before ")
    assert list(VerificationLog.objects.all()) == [kept]


def test_purge_with_days():
    kept, _, _ = aged(1), aged(8), aged(30)

    out, _ = run("purgeverificationlog", "--days", "7")

    assert out.startswith("Deleted 2 verification log rows older than 7 days")
    assert list(VerificationLog.objects.all()) == [kept]


def test_purge_dry_run_deletes_nothing():
    aged(100)
    aged(1)

    out, _ = run("purgeverificationlog", "--dry-run")

    assert out.startswith("Would delete 1 verification log rows older than 90 days")
    assert VerificationLog.objects.count() == 2


@pytest.mark.parametrize("days", ["0", "-3"])
def test_purge_refuses_less_than_a_day(days):
    aged(100)

    with pytest.raises(CommandError, match=r"--days must be 1 or more\."):
        run("purgeverificationlog", "--days", days)

    assert VerificationLog.objects.count() == 1


# Conventions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("createphoneuser", ["--enable-2fa", "--superuser", "changepassword"]),
        ("verification", ["send", "check", "cancel", "next", "search", "sweep"]),
        ("purgeverificationlog", ["--days", "--dry-run", "VERIFY_LOG_RETENTION_DAYS"]),
    ],
)
def test_help(name, words):
    command = load_command_class(get_commands()[name], name)

    text = command.create_parser("manage.py", name).format_help()

    assert all(word in text for word in words)


def test_an_expected_error_exits_non_zero_on_stderr_without_a_traceback():
    done = subprocess.run(
        [sys.executable, "manage.py", "verification", "send", "not-a-number"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "CommandError: Not a valid phone number. Use international format, e.g. +14155550100."
    )
