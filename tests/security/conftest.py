"""Tools of the adversarial suite: attacker browsers, fresh addresses and numbers, guards.

Every test here plays an attacker. What an attack may gain is measured in
what a person or an operator would notice: codes that went out (the locmem
outbox), guesses that reached the provider (`upstream.calls`), logins
(`logins`), rows written, pages shown. No response may be an HTTP 500: the
autouse `no_server_errors` fixture watches every response of every test.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import phonenumbers
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import Resolver404, resolve

from flows.services import PENDING_SESSION_KEY

from . import backends

BASE_DIR = Path(__file__).resolve().parents[2]
RECORDING_BACKEND = "tests.security.backends.VerificationBackend"

# Addresses handed to attacker browsers: never two alike in one run.
_addresses = itertools.count(1)


def fresh_ip() -> str:
    """Return a client address no other browser of this run has used."""
    return str(ipaddress.ip_address("100.64.0.0") + next(_addresses))


class Browser(Client):
    """A test client whose crashes read as one line.

    The test client re-raises what a view let through; for a visitor that is
    an HTTP 500, and that is what the failure says, without a page of Django
    frames.
    """

    def request(self, **request):
        try:
            return super().request(**request)
        except Exception as exc:
            where = f"{request.get('REQUEST_METHOD')} {request.get('PATH_INFO')}"
            pytest.fail(
                f"{where} crashed (an HTTP 500 for the visitor): {type(exc).__name__}: {exc}"[:600],
                pytrace=False,
            )


def attacker(ip: str | None = None, **kwargs) -> Browser:
    """Return a new browser: no cookies, its own client address (REMOTE_ADDR)."""
    return Browser(REMOTE_ADDR=ip or fresh_ip(), **kwargs)


def wrong_code(right: str) -> str:
    """Return a code of the same length that is certainly not `right`."""
    return "".join(str((int(digit) + 1) % 10) for digit in right)


CSRF_TOKEN_IN_FORM = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')


def strip_tokens(html: str) -> str:
    """Return the page with its CSRF tokens blanked: they differ on every page."""
    return CSRF_TOKEN_IN_FORM.sub(r"\1\2", html)


def page_text(response) -> str:
    """Return the body of a response as text."""
    return response.content.decode(errors="replace")


def logged_in_sessions(user_id=None) -> list[str]:
    """Return the keys of live server-side sessions that carry a login."""
    keys = []
    for session in Session.objects.all():
        data = session.get_decoded()
        if "_auth_user_id" in data and (user_id is None or data["_auth_user_id"] == str(user_id)):
            keys.append(session.session_key)
    return keys


def _valid_ordinary(number: str) -> bool:
    parsed = phonenumbers.parse(number, None)
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in {
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
    }


def numbers_in_range(prefix: str, count: int) -> list[str]:
    """Return `count` valid, ordinary E.164 numbers that all start with `prefix`."""
    width = 12 - len(prefix)  # +1 and ten digits for North American prefixes
    numbers = []
    for tail in range(10**width):
        number = f"{prefix}{tail:0{width}d}"
        if _valid_ordinary(number):
            numbers.append(number)
        if len(numbers) == count:
            return numbers
    raise AssertionError(f"not {count} valid numbers under {prefix}")


def numbers_in_distinct_ranges(count: int) -> list[str]:
    """Return `count` valid, ordinary numbers, no two in the same range (area code)."""
    numbers = []
    for area_code in range(201, 990):
        number = f"+1{area_code}5550142"
        if _valid_ordinary(number):
            numbers.append(number)
        if len(numbers) == count:
            return numbers
    raise AssertionError(f"not {count} area codes")


def api_endpoints() -> dict[str, str]:
    """Return the JSON API's endpoints (name -> path) that exist in this checkout."""
    found = {}
    for name in ("request", "check", "cancel", "next"):
        for path in (f"/api/verify/{name}", f"/api/verify/{name}/"):
            try:
                resolve(path)
            except Resolver404:
                continue
            found[name] = path
            break
    return found


def run_settings(env: dict[str, str | None], names: list[str]) -> subprocess.CompletedProcess:
    """Load the settings module in a fresh interpreter with `env` and print `names` as JSON.

    A value of None removes the variable, so a default shows. Returns the
    finished process: a refused configuration exits non-zero with its message.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VERIFY_", "VONAGE_", "SESSION_", "CACHE_", "DEBUG", "SECRET_"))
    }
    environment["DJANGO_SETTINGS_MODULE"] = "passwordless.settings"
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_values(env: dict[str, str | None], names: list[str]) -> dict:
    """Return the settings `names` as loaded with `env`; fail when the load fails."""
    finished = run_settings(env, names)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


# Fixtures ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_server_errors(monkeypatch):
    """Fail any test in which a response of the site was an HTTP 500.

    An exception a view lets through fails the test anyway (the test client
    raises it); a 503 with a clear answer (the API when the provider is down)
    is a deliberate answer, not a crash.

    Yields the list of every response, for tests that look at all of them.
    """
    seen = []
    original = Client.request

    def request(self, **request):
        response = original(self, **request)
        seen.append(response)
        return response

    monkeypatch.setattr(Client, "request", request)
    yield seen
    errors = [
        f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']} "
        f"answered {response.status_code}"
        for response in seen
        if response.status_code == 500
    ]
    assert not errors, "server errors: " + "; ".join(errors)


@pytest.fixture
def upstream(settings):
    """Route verifications through the recording backend; return its class."""
    settings.VERIFICATION_BACKEND = RECORDING_BACKEND
    backends.VerificationBackend.reset()
    yield backends.VerificationBackend
    backends.VerificationBackend.reset()


@pytest.fixture
def logins():
    """Return the list of user ids logged in (django.contrib.auth.login) during the test."""
    seen = []

    def receiver(sender, request, user, **kwargs):
        seen.append(user.pk)

    user_logged_in.connect(receiver, weak=False, dispatch_uid="security-suite-logins")
    yield seen
    user_logged_in.disconnect(dispatch_uid="security-suite-logins")


@pytest.fixture
def generous_send_limits(settings):
    """Let an attacker send as many codes as they like: for attacks on other limits."""
    for name in (
        "VERIFY_RATE_START_PER_IP",
        "VERIFY_RATE_START_PER_NUMBER",
        "VERIFY_PREFIX_RATE",
    ):
        setattr(settings, name, "10000/h")
    settings.VERIFY_MAX_SENDS_PER_HOUR = 100000
    settings.VERIFY_MAX_SENDS_PER_DAY = 100000


def session_pending(session_key: str) -> dict | None:
    """Return the pending verification stored server side under `session_key`."""
    session = Session.objects.filter(session_key=session_key).first()
    return session.get_decoded().get(PENDING_SESSION_KEY) if session else None


def session_cookie(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def concurrent_database(transactional_db, tmp_path):
    """Give this test a SQLite file database that concurrent requests can share.

    The test database is SQLite in memory with a shared cache, where a write
    that meets another connection's table lock fails at once ("database table
    is locked") instead of waiting: parallel requests would crash in a way no
    production database makes them. A file database in WAL mode, with a busy
    timeout and write transactions that take their lock up front, waits the way
    PostgreSQL does. Every thread's "default" connection points at it until the
    test ends; the in-memory test database is back for the teardown.
    """
    if connections["default"].vendor != "sqlite":
        # PostgreSQL waits on a lock as it should: the real database serves.
        yield
        return
    original_settings = connections.settings["default"]
    original_connection = connections["default"]
    file_settings = {
        **original_settings,
        "NAME": str(tmp_path / "concurrent.sqlite3"),
        "OPTIONS": {
            **original_settings.get("OPTIONS", {}),
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
    connections.settings["default"] = file_settings
    connections["default"] = connections.create_connection("default")
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = original_settings
        connections["default"] = original_connection


def run_together(count: int, action) -> tuple[list, list[str]]:
    """Run `action(index)` in `count` threads released at once; return (answers, crashes)."""
    barrier = threading.Barrier(count)
    answers, errors = [], []

    def run(index):
        try:
            barrier.wait(timeout=30)
            answers.append(action(index))
        except Exception as exc:  # collected: a crash is a finding, reported by the test
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers, errors


def compare_timings(
    time_one, registered: str, unknown: str, *, rounds: int = 20, warm_up: int = 25
):
    """Time `rounds` tries for each number, interleaved; return both medians and the tolerance.

    `time_one(number)` returns the seconds one try took. The warm-up runs the
    registered number first (`warm_up` times) so that whatever the site learns
    about its provider's speed has settled, then a few unknown ones. The order
    within each round alternates, so a slow spell of a loaded machine hits
    both kinds alike. Tolerance: the larger of 5 ms and half the larger median.
    """
    for _ in range(warm_up):
        time_one(registered)
    for _ in range(3):
        time_one(unknown)
    timings = {registered: [], unknown: []}
    for index in range(rounds):
        order = (registered, unknown) if index % 2 else (unknown, registered)
        for number in order:
            timings[number].append(time_one(number))
    slow, fast = statistics.median(timings[registered]), statistics.median(timings[unknown])
    return slow, fast, max(0.005, 0.5 * max(slow, fast))
