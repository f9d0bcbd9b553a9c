"""Two gunicorn servers on one database and one cache behave as one site.

A real deployment runs several app processes, often on several machines, and
consecutive requests of one person land on different ones. These tests start
two gunicorn servers (gunicorn.conf.py, one worker each) on loopback, sharing a
throwaway database and the cache, and prove that a rate limit counted on one
is enforced on the other and that a login started on one finishes on the
other. Codes come from the console backend, read from each server's output.

They run on whatever DATABASE_URL and CACHE_URL say: the embedded default
(a temporary SQLite file holding the database cache too) or, in CI's second
run, PostgreSQL (a throwaway database) and Redis (a key prefix of its own, and
sessions in the cache).
"""

from __future__ import annotations

import contextlib
import html
import http.client
import itertools
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import environ
import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
START_LIMIT = 3
CODE_LINE = re.compile(r"\[\w+ to (?P<masked>[^\]]+)\] .*code: (?P<code>\d{4,10})")
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="(?P<token>[^"]+)"')


# The servers -----------------------------------------------------------------


@dataclass
class Server:
    port: int
    log: Path
    process: subprocess.Popen

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _throwaway_database(tmp_path: Path):
    """Yield (DATABASE_URL, CACHE_URL, extra env) for a database nobody else uses."""
    database_url = os.environ.get("DATABASE_URL", "")
    cache_url = os.environ.get("CACHE_URL", "")
    extra = {}
    if database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        import psycopg

        config = environ.Env.db_url_config(database_url)
        name = f"passwordless_mp_{secrets.token_hex(4)}"
        admin = psycopg.connect(
            dbname=config["NAME"],
            user=config["USER"],
            password=config["PASSWORD"],
            host=config["HOST"],
            port=config["PORT"] or 5432,
            autocommit=True,
        )
        admin.execute(f'CREATE DATABASE "{name}"')
        url = urllib.parse.urlsplit(database_url)._replace(path=f"/{name}").geturl()
    else:
        admin = name = None
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    prefix = None
    if cache_url.startswith(("redis://", "rediss://")):
        # Same Redis, own key prefix: nothing of the test session's cache is
        # touched, and what the servers wrote is removed after.
        prefix = f"mp-{secrets.token_hex(4)}"
        separator = "&" if "?" in cache_url else "?"
        cache = f"{cache_url}{separator}key_prefix={prefix}"
        extra["SESSION_ENGINE"] = "cached_db"
    else:
        cache = "dbcache://django_cache"
    try:
        yield url, cache, extra
    finally:
        if prefix:
            import redis

            client = redis.Redis.from_url(cache_url)
            for key in client.scan_iter(match=f"{prefix}:*", count=500):
                client.delete(key)
            client.close()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop gunicorn and its workers (its own process group), for sure."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_until_serving(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn on port {server.port} exited:\n{server.output()[-3000:]}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            connection.request("GET", "/login/")
            if connection.getresponse().status == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"gunicorn on port {server.port} did not answer:\n{server.output()[-3000:]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two gunicorn servers, one worker each, on one throwaway database and cache."""
    tmp_path = tmp_path_factory.mktemp("multiprocess")
    with _throwaway_database(tmp_path) as (database_url, cache_url, extra):
        child_env = {
            **os.environ,
            # Development mode: plain HTTP on loopback, no collected static files.
            "DEBUG": "true",
            "SECRET_KEY": "multiprocess-test-" + secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": database_url,
            "CACHE_URL": cache_url,
            "VERIFY_BACKEND": "console",
            "VERIFY_TEST_NUMBERS": "",
            "PASSWORDLESS_SIGNUP": "true",
            "VERIFY_RATE_START_PER_IP": f"{START_LIMIT}/15m",
            "VERIFY_PREFIX_RATE": "1000/h",
            # One proxy in front: each test is its own client address.
            "TRUSTED_PROXY_COUNT": "1",
            "LOG_FORMAT": "plain",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            **extra,
        }
        child_env.pop("DJANGO_SETTINGS_MODULE", None)
        for command in (["migrate", "--noinput"], ["createcachetable"]):
            done = subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=BASE_DIR,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            if done.returncode:
                pytest.fail(f"manage.py {command[0]} failed:\n{done.stdout}{done.stderr}")
        started = []
        try:
            for name in ("a", "b"):
                port = _free_port()
                log = tmp_path / f"gunicorn-{name}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "gunicorn",
                            "--config",
                            str(BASE_DIR / "gunicorn.conf.py"),
                            "--bind",
                            f"127.0.0.1:{port}",
                            "--workers",
                            "1",
                            "--threads",
                            "2",
                        ],
                        cwd=BASE_DIR,
                        env=child_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                started.append(Server(port=port, log=log, process=process))
            deadline = time.monotonic() + 60
            for server in started:
                _wait_until_serving(server, deadline)
            yield started
        finally:
            for server in started:
                _stop(server.process)


# A browser -------------------------------------------------------------------


@dataclass
class Browser:
    """Cookies and CSRF like a browser, from one client address, to any server."""

    address: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, server: Server, method: str, path: str, form: dict | None = None):
        headers = {"X-Forwarded-For": self.address}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response, text

    def get(self, server, path):
        return self.request(server, "GET", path)

    def post_form(self, server, path, data):
        """GET the page's form on `server`, then POST it with its CSRF token."""
        _response, page = self.get(server, path)
        token = CSRF_FIELD.search(page)
        assert token, f"no CSRF token on {path}"
        return self.request(
            server, "POST", path, {"csrfmiddlewaretoken": html.unescape(token["token"]), **data}
        )


# Addresses handed out in turn: a random pick could land on one another test
# of this module used up its start limit with (the servers and their cache live
# as long as the module).
_addresses = itertools.count(secrets.randbelow(254))


def _address() -> str:
    # TEST-NET-3 (RFC 5737): a client address only in a header, never dialled.
    return f"203.0.113.{next(_addresses) % 254 + 1}"


def _number() -> str:
    return f"+1415555{secrets.randbelow(10000):04d}"


def code_sent(server: Server, number: str, *, after: int = 0, timeout: float = 10) -> str:
    """Return the code the console backend printed on `server` for `number`."""
    masked = f"+1 415 ••• ••{number[-2:]}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for match in CODE_LINE.finditer(server.output()[after:]):
            if match["masked"] == masked:
                return match["code"]
        time.sleep(0.1)
    pytest.fail(f"no code for {masked} on port {server.port}:\n{server.output()[-2000:]}")


# The tests ---------------------------------------------------------------------


def test_a_rate_limit_counted_on_one_server_holds_on_the_other(servers):
    a, b = servers
    address = _address()
    statuses = []
    for server in (a, b, a, b, a):
        response, _page = Browser(address).post_form(server, "/login/", {"number": _number()})
        statuses.append(response.status)
    # START_LIMIT codes from this address, wherever they were asked for; then
    # both servers refuse, and another address is still served.
    assert statuses == [302] * START_LIMIT + [429, 429]
    response, _page = Browser(_address()).post_form(b, "/login/", {"number": _number()})
    assert response.status == 302


def test_a_login_started_on_one_server_finishes_on_the_other(servers):
    a, b = servers
    browser, number = Browser(_address()), _number()
    seen = len(a.output())

    response, _page = browser.post_form(a, "/login/", {"number": number})
    assert (response.status, response.getheader("Location")) == (302, "/verify/")
    code = code_sent(a, number, after=seen)

    response, page = browser.get(b, "/verify/")
    assert response.status == 200
    assert f"+1 415 ••• ••{number[-2:]}" in page
    response, _page = browser.post_form(b, "/verify/", {"code": code})
    assert (response.status, response.getheader("Location")) == (302, "/")

    response, page = browser.get(a, "/")
    assert response.status == 200
    assert "You are logged in." in page
    national = f"{number[2:5]}-{number[5:8]}-{number[8:]}"
    assert f"+1 {national}" in page


def test_wrong_codes_on_both_servers_add_up(servers):
    a, b = servers
    browser, number = Browser(_address()), _number()
    seen = len(b.output())
    browser.post_form(b, "/login/", {"number": number})
    code = code_sent(b, number, after=seen)
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"

    for server in (a, b):
        response, _page = browser.post_form(server, "/verify/", {"code": wrong})
        assert (response.status, response.getheader("Location")) == (302, "/verify/")
    # The third wrong code, wherever it is typed, kills the request: the right
    # code is refused after it.
    response, _page = browser.post_form(a, "/verify/", {"code": wrong})
    assert (response.status, response.getheader("Location")) == (302, "/login/")
    response, _page = browser.request(
        b, "POST", "/verify/", {"code": code, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    )
    assert response.getheader("Location") == "/login/"
    response, page = browser.get(b, "/")
    assert "You are logged in." not in page
