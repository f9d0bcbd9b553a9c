"""Unsafe production configurations do not start silently.

With DEBUG off, a backend that writes codes into the log, a SECRET_KEY that
Django itself calls weak, and a proxy count that the requests contradict are
each refused or reported; HSTS options that cannot be taken back are the
operator's choice, not a default. Settings are read once per process, so each
configuration starts in a child process, as a deployment would.
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest

from passwordless import clients

from ..embedded_default import embedded_default_env, manage, python

REFUSED = "django.core.exceptions.ImproperlyConfigured"
GOOD_SECRET_KEY = "production-defaults-" + "k7Qz" * 10  # 60 characters, 18 distinct
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": GOOD_SECRET_KEY,
    "ALLOWED_HOSTS": "login.example.com,testserver",
    # Never reached: settings, checks and these requests open no Redis connection.
    "CACHE_URL": "redis://127.0.0.1:6379/0",
    "VERIFY_BACKEND": "vonage",
    "VONAGE_API_KEY": "key",
    "VONAGE_API_SECRET": "secret",
    # No collectstatic here: pages link the files as they are in static/.
    "STATIC_MANIFEST": "false",
}
SETUP = "import django; django.setup()"


def start(tmp_path, **env):
    """Load the settings with the production environment plus `env`."""
    return python(embedded_default_env(tmp_path, **{**PRODUCTION, **env}), SETUP)


def refusal(done) -> str:
    assert done.returncode != 0, "started"
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith(REFUSED + ": "), done.stderr[-2000:]
    return last_line


def test_the_production_environment_of_these_tests_starts(tmp_path):
    done = start(tmp_path)
    assert done.returncode == 0, done.stderr


# Backends that put codes in the log --------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        "console",
        "locmem",
        "verification.backends.console.VerificationBackend",
        "verification.backends.locmem.VerificationBackend",
    ],
)
def test_a_development_backend_does_not_start_with_debug_off(tmp_path, backend):
    # The console backend prints every code where the logs go: whoever reads
    # them logs in as anyone.
    message = refusal(start(tmp_path, VERIFY_BACKEND=backend))
    assert f"VERIFY_BACKEND={backend}" in message
    assert "VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION=true" in message


def test_a_development_backend_starts_with_debug_off_when_explicitly_allowed(tmp_path):
    done = start(
        tmp_path, VERIFY_BACKEND="console", VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION="true"
    )
    assert done.returncode == 0, done.stderr


def test_the_console_backend_is_still_the_development_default(tmp_path):
    done = python(embedded_default_env(tmp_path), SETUP)
    assert done.returncode == 0, done.stderr


# SECRET_KEY -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret_key",
    [
        secrets.token_urlsafe(40)[:49],  # one character short of Django's 50
        "abcd" * 20,  # long, but 4 distinct characters
        "django-insecure-" + secrets.token_urlsafe(50),  # what startproject writes
    ],
    ids=["49 characters", "4 distinct characters", "django-insecure- prefix"],
)
def test_a_secret_key_django_calls_weak_does_not_start(tmp_path, secret_key):
    message = refusal(start(tmp_path, SECRET_KEY=secret_key))
    assert "SECRET_KEY" in message
    # The value itself is never repeated in the message.
    assert secret_key not in message


def test_a_secret_key_at_djangos_threshold_starts(tmp_path):
    done = start(tmp_path, SECRET_KEY="abcde" * 10)
    assert done.returncode == 0, done.stderr


# HSTS ---------------------------------------------------------------------------

HSTS_HEADER = """
import django
django.setup()
from django.test import Client
print(Client().get("/login/", secure=True)["Strict-Transport-Security"])
"""


def test_hsts_covers_only_this_host_and_is_not_preloaded_by_default(tmp_path):
    # includeSubDomains binds every subdomain to HTTPS, and a preload entry
    # ships inside browsers for months: neither may follow from a default.
    done = python(embedded_default_env(tmp_path, **PRODUCTION), HSTS_HEADER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "max-age=3600"


def test_hsts_subdomains_and_preload_are_there_when_chosen(tmp_path):
    env = embedded_default_env(
        tmp_path,
        **PRODUCTION,
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    done = python(env, HSTS_HEADER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "max-age=31536000; includeSubDomains; preload"


def test_check_deploy_stays_clean_with_the_hsts_defaults(tmp_path):
    done = manage(
        embedded_default_env(tmp_path, **PRODUCTION),
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    # Only the two choices above are silenced, nothing else of --deploy.
    assert "(2 silenced)" in done.stdout


# TRUSTED_PROXY_COUNT ------------------------------------------------------------------


@pytest.fixture
def proxy_warnings(caplog, monkeypatch):
    """Return the WARNINGs about the proxy count, as a fresh process would log them."""
    monkeypatch.setattr(clients, "_proxy_count_warned", False)
    caplog.set_level(logging.WARNING, logger="passwordless.clients")
    return lambda: [
        record
        for record in caplog.records
        if record.name == "passwordless.clients" and "TRUSTED_PROXY_COUNT" in record.getMessage()
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("count", "forwarded_for"),
    [(1, None), (2, "203.0.113.9")],
    ids=["no proxy at all", "one proxy of two"],
)
def test_a_proxy_count_the_requests_contradict_is_logged_once(
    client, settings, proxy_warnings, count, forwarded_for
):
    settings.TRUSTED_PROXY_COUNT = count
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    for number in ("+14155550100", "+14155550101", "+14155550102"):
        client.post("/login/", {"number": number}, REMOTE_ADDR="198.51.100.7", **extra)

    [warning] = proxy_warnings()
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert f"TRUSTED_PROXY_COUNT={count}" in message
    assert "REMOTE_ADDR" in message


@pytest.mark.django_db
def test_requests_through_the_configured_proxies_log_nothing(client, settings, proxy_warnings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        "/login/",
        {"number": "+14155550100"},
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    settings.TRUSTED_PROXY_COUNT = 0
    client.post("/login/", {"number": "+14155550101"}, REMOTE_ADDR="198.51.100.7")

    assert proxy_warnings() == []


def test_the_production_environment_values(tmp_path):
    done = python(
        embedded_default_env(tmp_path, **PRODUCTION),
        """
        import json, django
        django.setup()
        from django.conf import settings as s
        print(json.dumps([s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD,
                          s.VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION]))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, False, False]
