"""When Redis or the database cannot be reached, every answer is a handled one.

The outages are real: the cache is a django-redis cache on a loopback port
nothing listens on, and the database a PostgreSQL connection to such a port,
whatever the run's own database is. Sessions are `cached_db`, as production
runs them. People arrive in the middle of something (a login waiting for its
code, a logged-in visit, an API request_id) made while everything answered,
then the dependency goes away.

What they must notice: the 503 page ("Nothing was lost: try again in a
moment") with Retry-After, or the API's status "5"; never the 500 page;
nothing sent, nothing stored, the session as it was. What the operator must
notice: one log line naming the dependency, not a traceback per request,
and /healthz saying which one failed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from importlib import import_module

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import OperationalError, connections
from django.test import Client
from django_redis.cache import RedisCache

from accounts.models import User
from flows.services import PENDING_SESSION_KEY
from passwordless import outages, sessions
from passwordless.sessions import cache_generation, cached_db, forget_cache_generation
from verificationlog.models import VerificationLog

from .conftest import NUMBER, OTHER_NUMBER, last_code, start_login
from .factories import UserFactory
from .test_api import assert_matches_spec
from .test_production_settings import run_python

pytestmark = pytest.mark.django_db

UNAVAILABLE = "The service is temporarily unavailable. Nothing was lost: try again in a moment."
SOMETHING_WENT_WRONG = "Something went wrong"
API_NUMBER = "+14155550142"
CACHED_DB = "passwordless.sessions.cached_db"
PASSWORD = "correct horse battery staple"


def closed_port() -> int:
    """Return a loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def visitor() -> Client:
    # The handled answer, as a browser gets it: the test client would re-raise
    # the exception instead of showing the page Django sends.
    return Client(raise_request_exception=False)


@pytest.fixture(autouse=True)
def _no_incident_left_over():
    """Each test starts with no outage on record, and leaves none to the next file."""
    outages.reset()
    yield
    outages.reset()


@pytest.fixture
def production_sessions(settings):
    settings.SESSION_ENGINE = CACHED_DB
    settings.RATELIMIT_USE_CACHE = "default"


class People:
    """Visitors caught by the outage in the middle of what they were doing."""

    def __init__(self, outbox):
        self.anonymous = visitor()
        self.mid_login = visitor()
        response = self.mid_login.post("/login/", {"number": NUMBER})
        assert response.status_code == 302
        self.code = last_code(outbox)
        self.user = UserFactory(phone_number_for_2fa=OTHER_NUMBER, password=PASSWORD)
        self.logged_in = visitor()
        self.logged_in.force_login(self.user)
        self.api = visitor()
        response = self.api.post(
            "/api/verify/request", {"number": API_NUMBER}, content_type="application/json"
        )
        assert response.status_code == 200
        self.request_id = response.json()["request_id"]
        self.api_code = last_code(outbox, API_NUMBER)


@pytest.fixture
def people(production_sessions, outbox):
    return People(outbox)


def stored() -> dict:
    """Everything a failed request could have written: sessions, log rows, users."""
    return {
        "sessions": sorted(Session.objects.values_list("session_key", "session_data")),
        "log rows": VerificationLog.objects.count(),
        "users": sorted(User.objects.values_list("pk", "last_login")),
    }


def unreachable_redis_settings() -> dict:
    """Return a CACHES entry for a Redis on a loopback port nothing listens on."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }


@pytest.fixture
def cache_down(settings, people):
    """Point the cache (rate limits, sessions, codes) at a Redis that is not there."""
    working = settings.CACHES
    settings.CACHES = {"default": unreachable_redis_settings()}
    yield working


@contextlib.contextmanager
def database_down():
    """Make every query of the site go to a PostgreSQL port nothing listens on."""
    original_settings = connections.settings["default"]
    original = connections["default"]
    connections.settings["default"] = {
        **original_settings,
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": str(closed_port()),
        "NAME": "passwordless",
        "USER": "passwordless",
        "PASSWORD": "",
        "OPTIONS": {"connect_timeout": 1},
    }
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = original_settings
        connections["default"] = original


def assert_unavailable_page(response):
    assert response.status_code == 503, response.status_code
    page = response.content.decode()
    assert UNAVAILABLE in page
    assert SOMETHING_WENT_WRONG not in page
    assert response["Retry-After"] == str(outages.RETRY_AFTER)
    assert "no-store" in response["Cache-Control"]
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies


def assert_api_unavailable(response, path):
    assert response.status_code == 503, response.status_code
    assert response.json()["status"] == "5"
    assert response["Retry-After"] == str(outages.RETRY_AFTER)
    assert_matches_spec(response, "POST", path)


# The cache is down ------------------------------------------------------------

PAGES_NEEDING_THE_CACHE = [
    ("anonymous", "post", "/login/", {"number": "+14155550177"}),
    ("anonymous", "post", "/login/password/", {"username": "someone", "password": PASSWORD}),
    ("mid_login", "post", "/verify/", {"code": "right"}),
    ("mid_login", "post", "/verify/resend/", {}),
    ("mid_login", "post", "/verify/call/", {}),
    ("logged_in", "post", "/account/phone/", {"number": "+14155550188"}),
]


@pytest.mark.parametrize(("who", "method", "path", "data"), PAGES_NEEDING_THE_CACHE)
def test_a_page_that_needs_the_cache_answers_the_503_page(
    cache_down, people, outbox, time_machine, who, method, path, data
):
    # Past the wait between codes: a new code would be counted now.
    time_machine.move_to(time.time() + 60)
    sent, before = len(outbox), stored()
    if data and data.get("code") == "right":
        data = {"code": people.code}
    client = getattr(people, who)
    response = client.get(path) if method == "get" else client.post(path, data)
    assert_unavailable_page(response)
    assert len(outbox) == sent, "a code went out while the limits could not count it"
    assert stored() == before


def test_a_cancel_the_cache_cannot_record_is_a_503_and_the_code_page_stays(
    cache_down, people, outbox
):
    sessions = stored()["sessions"]
    assert_unavailable_page(people.mid_login.post("/verify/cancel/", {}))
    assert stored()["sessions"] == sessions
    response = people.mid_login.get("/verify/")
    assert response.status_code == 200


PAGES_WITHOUT_THE_CACHE = [
    ("mid_login", "/verify/", 200),
    ("logged_in", "/", 200),
    ("logged_in", "/account/", 200),
    ("logged_in", "/account/phone/", 200),
    # Not staff: the admin sends them to its login, as always.
    ("logged_in", "/admin/", 302),
]


@pytest.mark.parametrize(("who", "path", "status"), PAGES_WITHOUT_THE_CACHE)
def test_a_page_that_needs_only_the_session_works_from_the_database(
    cache_down, people, who, path, status
):
    before = stored()
    response = getattr(people, who).get(path)
    assert response.status_code == status
    assert stored() == before


API_CALLS = [
    ("request", {"number": "+14155550177"}),
    ("check", {"code": "right"}),
    ("cancel", {}),
    ("next", {}),
]


@pytest.mark.parametrize(("endpoint", "data"), API_CALLS)
def test_an_api_call_answers_status_5_with_retry_after(cache_down, people, outbox, endpoint, data):
    sent, before = len(outbox), stored()
    if endpoint != "request":
        data = {"request_id": people.request_id, **data}
    if data.get("code") == "right":
        data["code"] = people.api_code
    path = f"/api/verify/{endpoint}"
    response = people.api.post(path, data, content_type="application/json")
    assert_api_unavailable(response, path)
    assert len(outbox) == sent
    assert stored() == before


def test_healthz_names_the_cache_and_pages_that_need_neither_keep_working(cache_down, people):
    response = visitor().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "unavailable"}
    assert "no-store" in response["Cache-Control"]
    for path in ("/", "/login/", "/static/css/site.css"):
        response = people.anonymous.get(path)
        assert response.status_code == 200, path


def test_the_log_names_the_cache_once_not_a_traceback_per_request(cache_down, people, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert people.mid_login.post("/verify/", {"code": people.code}).status_code == 503
        assert people.anonymous.post("/login/", {"number": NUMBER}).status_code == 503
        response = people.api.post(
            "/api/verify/request", {"number": API_NUMBER}, content_type="application/json"
        )
        assert response.status_code == 503
        assert visitor().get("/healthz").status_code == 503
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in errors] == [
        "dependency unavailable: cache (ConnectionError)"
    ]
    assert errors[0].name == "passwordless.outages"
    assert NUMBER not in caplog.text and API_NUMBER not in caplog.text


def test_the_log_says_when_the_cache_answers_again(cache_down, settings, caplog):
    caplog.set_level(logging.INFO, logger="passwordless.outages")
    assert visitor().get("/healthz").status_code == 503
    settings.CACHES = cache_down
    assert visitor().get("/healthz").status_code == 200
    assert [record.getMessage() for record in caplog.records] == [
        "dependency unavailable: cache (ConnectionError)",
        "dependency available again: cache",
    ]


def test_a_long_outage_is_one_line_a_minute_with_its_count(cache_down, monkeypatch, caplog):
    now = [1000.0]
    monkeypatch.setattr(outages, "clock", lambda: now[0])
    caplog.set_level(logging.ERROR, logger="passwordless.outages")
    for seconds in range(0, 130, 10):
        now[0] = 1000.0 + seconds
        assert visitor().post("/login/", {"number": NUMBER}).status_code == 503
    assert [record.getMessage() for record in caplog.records] == [
        "dependency unavailable: cache (ConnectionError)",
        "dependency unavailable: cache (ConnectionError), 6 failures since the last line",
        "dependency unavailable: cache (ConnectionError), 6 failures since the last line",
    ]


# The database is down -------------------------------------------------------------


def test_the_database_down_answers_503_and_keeps_the_session(people, outbox):
    sent = len(outbox)
    session_key = people.mid_login.cookies[django_settings.SESSION_COOKIE_NAME].value
    with database_down():
        assert_unavailable_page(people.anonymous.post("/login/", {"number": "+14155550177"}))
        # Whatever the view had changed of the session in memory, a 503
        # stores none of it: the pending verification stays for the retry.
        assert_unavailable_page(people.mid_login.post("/verify/", {"code": people.code}))
        assert_api_unavailable(
            people.api.post(
                "/api/verify/request", {"number": "+14155550177"}, content_type="application/json"
            ),
            "/api/verify/request",
        )
        assert people.anonymous.get("/").status_code == 200
        health = visitor().get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "unavailable"
    assert len(outbox) == sent
    session = Session.objects.get(session_key=session_key).get_decoded()
    assert PENDING_SESSION_KEY in session
    assert SESSION_KEY not in session


def test_the_log_names_the_database_once(people, caplog):
    caplog.set_level(logging.INFO)
    with database_down():
        for _ in range(3):
            assert people.anonymous.post("/login/", {"number": NUMBER}).status_code == 503
            assert people.mid_login.post("/verify/", {"code": people.code}).status_code == 503
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    # The verification log's rows that could not be written are part of that
    # one line, not an ERROR each.
    assert errors == ["dependency unavailable: database (OperationalError)"]


# Health -----------------------------------------------------------------------------


def test_healthz_is_200_with_no_session_no_cookie_no_log(caplog):
    caplog.set_level(logging.DEBUG)
    client = visitor()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies
    assert "Vary" not in response
    assert Session.objects.count() == 0
    head = client.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""
    assert not [r for r in caplog.records if r.name.startswith(("django", "passwordless"))]


def test_healthz_answers_a_load_balancer_probe_over_plain_http_by_address(settings):
    # A probe sent straight to the app server: plain HTTP, the server's
    # address for a Host. The SSL redirect and ALLOWED_HOSTS would refuse it.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["login.example.com"]
    response = Client(HTTP_HOST="10.0.0.5:8000").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok"}


def test_load_balancer_probes_stay_out_of_gunicorns_access_log():
    # gunicorn's own logging, configured as a worker configures it, and its
    # access lines written as gunicorn writes them (the atoms as arguments).
    done = run_python(
        """
        import logging, logging.config, runpy
        from gunicorn.glogging import SafeAtoms
        conf = runpy.run_path("gunicorn.conf.py")
        logging.config.dictConfig(conf["logconfig_dict"])
        for path in ("/healthz", "/login/"):
            atoms = {"h": "10.0.0.9", "m": "GET", "U": path, "s": "200", "B": "2", "M": "1",
                     "a": "ELB-HealthChecker/2.0"}
            logging.getLogger("gunicorn.access").info(conf["access_log_format"], SafeAtoms(atoms))
        """,
        LOG_FORMAT="plain",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert 'path="/login/"' in lines[0]


# Not an outage ----------------------------------------------------------------------


def test_only_an_outage_is_a_503_a_bug_stays_the_500_page(cache_down, settings, monkeypatch):
    # A fault of the site's own stays a 500, with its traceback in the log,
    # so that it is noticed and fixed rather than taken for an outage.
    assert_unavailable_page(visitor().post("/login/", {"number": "+14155550177"}))
    settings.CACHES = cache_down

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("flows.services.verification_start", broken)
    response = visitor().post("/login/", {"number": "+14155550177"})
    assert response.status_code == 500
    assert SOMETHING_WENT_WRONG in response.content.decode()


def test_log_rows_that_cannot_be_written_are_part_of_the_outage_line(caplog):
    from verificationlog.events import verification_event

    caplog.set_level(logging.INFO)
    with database_down():
        for _ in range(3):
            verification_event(None, outcome="started", purpose="login", number=NUMBER)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == ["dependency unavailable: database (OperationalError)"]


# Sessions through an outage -----------------------------------------------------------


def unreachable_redis():
    """Return a django-redis cache on a port nothing listens on: every call fails at once."""
    params = unreachable_redis_settings()
    return RedisCache(params["LOCATION"], params)


def test_a_logout_while_the_cache_is_down_is_not_undone_when_it_comes_back(
    settings, cache_down, people
):
    # The logged-in session's copy is in the cache.
    session_key = people.logged_in.cookies[django_settings.SESSION_COOKIE_NAME].value
    copy = f"passwordless.sessions:{session_key}"
    response = people.logged_in.post("/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=session_key).exists()
    # Redis comes back with the data it had: the logged-in copy among it.
    settings.CACHES = cache_down
    assert caches["default"].get(copy)[1][SESSION_KEY] == str(people.user.pk)
    # The stolen cookie is used on another process, which saw nothing of it.
    forget_cache_generation()
    stolen = visitor()
    stolen.cookies[django_settings.SESSION_COOKIE_NAME] = session_key
    response = stolen.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_login_whose_session_missed_the_cache_stays_a_login_when_redis_returns(
    production_sessions, outbox
):
    browser = visitor()
    start_login(browser)

    def redis_stops(sender, request, user, **kwargs):
        # Redis stops in the middle of the login, holding a copy of the new
        # session from before the login was in it (what Django's cached_db
        # writes as login() moves the session); the login's own copy is not
        # written.
        older = (cache_generation(), {})
        caches["default"].set(request.session.cache_key, older, 300)
        request.session._cache = unreachable_redis()

    user_logged_in.connect(redis_stops)
    try:
        response = browser.post("/verify/", {"code": last_code(outbox)})
    finally:
        user_logged_in.disconnect(redis_stops)
    assert response.status_code == 302
    assert response["Location"] == "/"
    # Redis is back with what it had, the copy from before the login among it.
    response = browser.get("/account/")
    assert response.status_code == 200


class DatabaseFailsAfterTheView:
    """Middleware, just inside the sessions': the database goes away once the view is done."""

    faults = None  # an ExitStack while armed

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if DatabaseFailsAfterTheView.faults is not None:
            DatabaseFailsAfterTheView.faults.enter_context(database_down())
        return response


@pytest.fixture
def database_fails_after_the_view(settings):
    """Return post(client, path, data): the database goes away once the view has answered."""
    session = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: session + 1],
        f"{__name__}.DatabaseFailsAfterTheView",
        *settings.MIDDLEWARE[session + 1 :],
    ]

    def post(client, path, data):
        with contextlib.ExitStack() as faults:
            DatabaseFailsAfterTheView.faults = faults
            try:
                return client.post(path, data)
            finally:
                DatabaseFailsAfterTheView.faults = None

    return post


@pytest.mark.parametrize("engine", ["passwordless.sessions.db", CACHED_DB])
def test_a_login_is_kept_when_the_database_fails_as_the_request_ends(
    settings, outbox, engine, database_fails_after_the_view
):
    settings.SESSION_ENGINE = engine
    browser = visitor()
    start_login(browser)
    response = database_fails_after_the_view(browser, "/verify/", {"code": last_code(outbox)})
    # The login and its session were written together before the database
    # went: the end of the request has nothing left to write, and the
    # browser gets the new session's cookie.
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = browser.get("/account/")
    assert response.status_code == 200


@pytest.mark.parametrize("engine", ["passwordless.sessions.db", CACHED_DB])
def test_a_password_change_keeps_the_session_when_the_database_fails_as_the_request_ends(
    settings, engine, database_fails_after_the_view
):
    settings.SESSION_ENGINE = engine
    user = UserFactory(password=PASSWORD)
    browser = visitor()
    browser.force_login(user)
    new = "a new long passphrase"
    data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    response = database_fails_after_the_view(browser, "/account/password/", data)
    # The password and the session's move to a new key were written
    # together: the browser gets the new key and stays logged in.
    assert response.status_code == 302
    assert browser.get("/account/").status_code == 200
    user.refresh_from_db()
    assert user.check_password(new)


@pytest.mark.parametrize("engine", ["passwordless.sessions.db", CACHED_DB])
def test_a_login_whose_new_session_key_is_taken_writes_nothing_and_the_retry_logs_in(
    settings, outbox, engine, monkeypatch
):
    # The new key is taken only if the random generator repeats itself: the
    # login's transaction then fails whole rather than pay a savepoint on
    # every login (passwordless.sessions.save_in_transaction).
    settings.SESSION_ENGINE = engine
    taken = import_module(engine).SessionStore()
    taken["owner"] = "someone else"
    taken.save()
    UserFactory(phone_number_for_2fa=NUMBER)
    browser = visitor()
    start_login(browser)
    session_key = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    before = stored()
    keys = iter([taken.session_key])
    drawn = sessions.get_random_string
    monkeypatch.setattr(
        sessions, "get_random_string", lambda *args: next(keys, None) or drawn(*args)
    )
    code = last_code(outbox)
    response = browser.post("/verify/", {"code": code})
    assert response.status_code == 500
    assert SOMETHING_WENT_WRONG in response.content.decode()
    # Nothing of the login was written (no last_login), and the other
    # session is untouched.
    assert stored()["sessions"] == before["sessions"]
    assert stored()["users"] == before["users"]
    assert browser.cookies[django_settings.SESSION_COOKIE_NAME].value == session_key
    assert import_module(engine).SessionStore(taken.session_key)["owner"] == "someone else"
    # The provider took the code the first time; the retry finishes without it.
    response = browser.post("/verify/", {"code": code})
    assert response.status_code == 302
    assert browser.get("/account/").status_code == 200


def test_a_generation_the_database_cannot_record_is_recorded_at_the_next_read(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions, "clock", lambda: now[0])
    first = sessions.cache_generation()
    assert sessions.cache_generation_usable()
    # A copy could not be written, and the database is down too.
    with database_down(), pytest.raises(OperationalError):
        sessions.cache_generation_advance()
    # Until a new generation is recorded, this process uses no copy.
    assert not sessions.cache_generation_usable()
    now[0] += sessions.GENERATION_POLL_INTERVAL
    assert sessions.cache_generation() != first
    assert sessions.cache_generation_usable()


class RedisServer:
    """A redis-server of the test's own on a free loopback port, its snapshot in `directory`."""

    def __init__(self, directory):
        self.directory = directory
        self.port = closed_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self):
        """Stop without saving (no save points): the next start loads the last snapshot."""
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(settings, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
        }
    }
    settings.SESSION_ENGINE = CACHED_DB
    yield server
    server.stop()


@pytest.mark.services
def test_a_logout_is_not_undone_by_redis_restarting_from_an_older_snapshot(own_redis, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions, "clock", lambda: now[0])
    browser = visitor()
    browser.force_login(UserFactory())
    assert browser.get("/account/").status_code == 200
    stolen = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    # Redis snapshots while the person is logged in, then they log out.
    own_redis.client().save()
    assert browser.post("/logout/").status_code == 302
    # Redis restarts from that snapshot: the logged-in copy is back in it.
    own_redis.stop()
    own_redis.start()
    key = caches["default"].make_key(cached_db.KEY_PREFIX + stolen)
    assert own_redis.client().exists(key)
    # Within a second every process sees a new server and a new generation;
    # the copy of the old one is never served, and the stolen cookie stays dead.
    now[0] += sessions.GENERATION_POLL_INTERVAL
    thief = visitor()
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = stolen
    response = thief.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
