"""The production configuration: hardened settings, the client address behind a
proxy, the Content-Security-Policy, static files, logs and gunicorn's settings.

Settings are read once per process, so the production ones (DEBUG off) are
checked in a child process with the environment a deployment would have.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory

from passwordless.clients import client_ip
from passwordless.logging import JSONFormatter

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "production-settings-test-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "login.example.com,testserver",
    # Never reached: checks and the test client below open no Redis connection.
    "CACHE_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "sqlite:///:memory:",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "CSRF_TRUSTED_ORIGINS": "https://login.example.com",
    "VERIFY_TEST_NUMBERS": "",
    # Never called: nothing below sends a code.
    "VERIFY_BACKEND": "vonage",
    "VONAGE_API_KEY": "key",
    "VONAGE_API_SECRET": "secret",
}


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Run `code` in a child Python with the project's settings and `env`."""
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "passwordless.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=BASE_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_manage(*args, **env) -> subprocess.CompletedProcess:
    child_env = {**os.environ, **env}
    child_env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# check --deploy -------------------------------------------------------------------


def test_check_deploy_reports_nothing_with_production_settings():
    done = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    # Silenced: HSTS includeSubDomains and preload, off until chosen (settings.py).
    assert "System check identified no issues (2 silenced)." in done.stdout


def test_production_settings_are_hardened():
    done = run_python(
        """
        import json, django
        django.setup()
        from django.conf import settings as s
        print(json.dumps({
            "ssl_redirect": s.SECURE_SSL_REDIRECT,
            "hsts": [s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
                     s.SECURE_HSTS_PRELOAD],
            "session_cookie": [s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,
                               s.SESSION_COOKIE_SAMESITE],
            "csrf_cookie": [s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.CSRF_COOKIE_SAMESITE],
            "proxy_ssl_header": s.SECURE_PROXY_SSL_HEADER,
            "trusted_origins": s.CSRF_TRUSTED_ORIGINS,
            "cache": s.CACHES["default"]["BACKEND"],
            "static": s.STORAGES["staticfiles"]["BACKEND"],
            "log_format": s.LOG_FORMAT,
        }))
        """,
        **PRODUCTION_ENV,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ssl_redirect": True,
        "hsts": [3600, False, False],
        "session_cookie": [True, True, "Lax"],
        "csrf_cookie": [True, True, "Lax"],
        "proxy_ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "trusted_origins": ["https://login.example.com"],
        "cache": "django_redis.cache.RedisCache",
        "static": "passwordless.staticfiles.ManifestStaticFilesStorage",
        "log_format": "json",
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SESSION_ENGINE": "signed_cookies"}, "SESSION_ENGINE must be one of db, cached_db"),
        (
            {"DEBUG": "true", "CACHE_URL": "dbcache://django_cache", "SESSION_ENGINE": "cache"},
            "SESSION_ENGINE=cache needs CACHE_URL to point at Redis",
        ),
        (
            {"CACHE_URL": "redis://127.0.0.1:6379/0?ignore_exceptions=true"},
            "SESSION_ENGINE=cached_db cannot run with the cache's IGNORE_EXCEPTIONS",
        ),
        # Never installed, and its failures would not be the 503 page.
        ({"CACHE_URL": "pymemcache://127.0.0.1:11211"}, "CACHE_URL must point at Redis"),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be 0 or more"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER must be"),
    ],
)
def test_unsafe_or_broken_settings_stop_the_start(env, message):
    done = run_python("import django; django.setup()", **{**PRODUCTION_ENV, **env})
    assert done.returncode != 0
    assert message in done.stderr


def test_sessions_may_live_in_redis():
    done = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SESSION_ENGINE)",
        **PRODUCTION_ENV,
        SESSION_ENGINE="cached_db",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "passwordless.sessions.cached_db"


@pytest.mark.services
def test_this_run_uses_postgresql_and_redis():
    # CI's second run sets REQUIRE_SERVICES: a typo in its URLs must fail the
    # run rather than quietly test SQLite twice.
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"


# The client address behind proxies --------------------------------------------


def request_from(remote_addr: str, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().get("/", **extra)


def test_without_a_trusted_proxy_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


@pytest.mark.parametrize(
    ("count", "forwarded_for", "expected"),
    [
        # nginx appends the address it saw: the client is the last entry, and a
        # value the client wrote itself stays to the left, ignored.
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two proxies (a load balancer, then nginx): the second from the right.
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (1, "2001:db8::1", "2001:db8::1"),
        # Fewer entries than proxies: it did not come through them all.
        (2, "203.0.113.9", "10.0.0.5"),
        (1, None, "10.0.0.5"),
        # Not an address: malformed, so not trusted.
        (1, "203.0.113.9, nonsense", "10.0.0.5"),
    ],
)
def test_behind_trusted_proxies_the_client_comes_from_the_header(
    settings, count, forwarded_for, expected
):
    settings.TRUSTED_PROXY_COUNT = count
    assert client_ip(request_from("10.0.0.5", forwarded_for)) == expected


@pytest.mark.django_db
def test_a_client_cannot_dodge_the_ip_limit_with_a_forged_header(client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.VERIFY_RATE_START_PER_IP = "2/15m"
    statuses = [
        client.post(
            "/login/",
            {"number": f"+1415555{index:04d}"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{index}",
        ).status_code
        for index in range(1, 4)
    ]
    assert statuses == [302, 302, 429]


# Content-Security-Policy ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/login/", "/no-such-page/"])
def test_pages_carry_the_content_security_policy(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


INLINE = re.compile(
    r"""style\s*=|<style|<script(?![^>]*\bsrc=)|\son[a-z]+\s*=|javascript:""", re.IGNORECASE
)


@pytest.mark.parametrize(
    "template",
    sorted(path.relative_to(BASE_DIR) for path in (BASE_DIR / "templates").rglob("*.html")),
    ids=str,
)
def test_templates_honour_the_policy(template):
    # default-src 'self' without 'unsafe-inline': an inline style, script or
    # event handler would be blocked by the browser, silently.
    text = (BASE_DIR / template).read_text()
    assert not INLINE.findall(text), f"{template} has inline style or script"


# Static files --------------------------------------------------------------------


def test_whitenoise_serves_collected_files_under_hashed_names(tmp_path):
    env = {**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path / "static")}
    done = run_manage("collectstatic", "--noinput", "-v0", **env)
    assert done.returncode == 0, done.stderr
    done = run_python(
        """
        import json, re, django
        django.setup()
        from django.test import Client
        client = Client()
        page = client.get("/login/", secure=True).content.decode()
        css = re.search(r'href="(/static/css/site\\.[0-9a-f]{12}\\.css)"', page).group(1)
        plain = client.get(css, secure=True)
        gzipped = client.get(css, secure=True, HTTP_ACCEPT_ENCODING="gzip")
        print(json.dumps({
            "status": plain.status_code,
            "cache": plain["Cache-Control"],
            "encoding": gzipped.get("Content-Encoding"),
        }))
        """,
        **env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "status": 200,
        "cache": "max-age=315360000, public, immutable",
        "encoding": "gzip",
    }


# Logs ----------------------------------------------------------------------------


def test_log_lines_are_one_json_object_per_event():
    logger = logging.getLogger("verificationlog.events")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "verification event=%s", ("started",), None
    )
    record.number = "+1 415 ••• ••00"
    try:
        raise ValueError("upstream\nsaid no")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "verificationlog.events"
    assert entry["message"] == "verification event=started"
    assert entry["number"] == "+1 415 ••• ••00"
    assert "ValueError: upstream\nsaid no" in entry["exception"]


# gunicorn ------------------------------------------------------------------------


def test_gunicorn_outlasts_vonage_and_threads_its_workers():
    done = run_python(
        """
        import json, runpy
        conf = runpy.run_path("gunicorn.conf.py")
        print(json.dumps({k: conf[k] for k in ("workers", "worker_class", "threads",
                                                "worker_connections", "timeout", "accesslog",
                                                "bind")}))
        """,
        VONAGE_TIMEOUT="25",
        PORT="9123",
    )
    assert done.returncode == 0, done.stderr
    conf = json.loads(done.stdout)
    assert conf["worker_class"] == "gthread"
    assert conf["threads"] > 1
    # A worker whose threads are all busy (waiting on Vonage) accepts nothing
    # more: the next visitor goes to a worker that can answer now.
    assert conf["worker_connections"] == conf["threads"]
    assert conf["timeout"] > 3 * 25
    # WEB_CONCURRENCY, when a .env sets it, wins over the core count.
    expected_workers = os.environ.get("WEB_CONCURRENCY") or 2 * len(os.sched_getaffinity(0)) + 1
    assert conf["workers"] == int(expected_workers)
    assert conf["accesslog"] == "-"
    assert conf["bind"] == ["127.0.0.1:9123"]


def test_gunicorn_and_the_site_log_to_stderr_and_leave_stdout_alone():
    # In the order a worker does it: gunicorn's logging first, then Django's.
    done = run_python(
        """
        import logging, logging.config, runpy
        logging.config.dictConfig(runpy.run_path("gunicorn.conf.py")["logconfig_dict"])
        import django
        django.setup()
        logging.getLogger("gunicorn.error").info("Booting worker with pid: 42")
        logging.getLogger("gunicorn.access").info('remote=203.0.113.9 method=GET path="/"')
        logging.getLogger("verificationlog.events").info("verification event=started")
        """,
        DEBUG="true",
        LOG_FORMAT="plain",
        LOG_LEVEL="INFO",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert [line.split(" ", 3)[2:] for line in lines] == [
        ["INFO", "gunicorn.error Booting worker with pid: 42"],
        ["INFO", 'gunicorn.access remote=203.0.113.9 method=GET path="/"'],
        ["INFO", "verificationlog.events verification event=started"],
    ]


@pytest.mark.parametrize(("debug", "warned"), [("true", True), ("false", False)])
def test_gunicorn_warns_when_it_serves_with_debug_on(debug, warned):
    done = run_python(
        """
        import runpy

        class Log:
            def warning(self, message, *args):
                print("WARNING", message % args if args else message)

        class Arbiter:
            log = Log()

        runpy.run_path("gunicorn.conf.py")["when_ready"](Arbiter())
        """,
        DEBUG=debug,
    )
    assert done.returncode == 0, done.stderr
    assert ("WARNING DEBUG is on" in done.stdout) is warned
