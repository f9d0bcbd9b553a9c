import base64
import datetime
import os
import pickle
import re
import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.db import connection

import verification
from flows import defences
from flows.counters import Counter
from flows.services import PENDING_SESSION_KEY
from passwordless.sessions import forget_cache_generation

from .factories import UserFactory

pytest_plugins = ["tests.emulator.fixtures"]


def pytest_collection_modifyitems(config, items):
    """Select the `services` tests only in the run on PostgreSQL and Redis."""
    if os.environ.get("REQUIRE_SERVICES"):
        return
    services = [item for item in items if item.get_closest_marker("services")]
    if services:
        config.hook.pytest_deselected(items=services)
        items[:] = [item for item in items if not item.get_closest_marker("services")]


NUMBER = "+14155550100"
OTHER_NUMBER = "+14155550199"


@pytest.fixture(autouse=True)
def _windows_start_with_the_test(request, monkeypatch):
    """Start every counting window when the test starts, so that none ends mid-test.

    A value's windows start at an offset of its own (flows.counters): left
    so, a test that counts up to a limit lands across a window's end, and
    finds a fresh count, about once in a few thousand runs. The tests of the
    offsets themselves keep them.
    """
    if request.module.__name__.endswith("test_limit_counters"):
        return
    started = int(time.time())
    monkeypatch.setattr(Counter, "offset", property(lambda self: started % self.rate.period))


@pytest.fixture(autouse=True)
def _locmem_verification(settings):
    """Tests send codes to an outbox, like Django's test runner does for e-mail."""
    # A fast hasher: tests check login rules, not the cost of PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VERIFICATION_BACKEND = "verification.backends.locmem.VerificationBackend"
    verification.outbox = []
    yield
    verification.outbox = []


@pytest.fixture(autouse=True)
def _cache_generation_unknown():
    """Each test's process starts knowing nothing of the sessions' cache generation."""
    forget_cache_generation()
    yield
    forget_cache_generation()


@pytest.fixture(autouse=True)
def _empty_cache(request):
    """Rate-limit counters and codes live in the cache: every test starts clean.

    The embedded default keeps the cache in the test database, which each test
    rolls back; a shared cache (Redis) is emptied here.
    """
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
    } & set(request.fixturenames)
    if uses_db:
        request.getfixturevalue(
            "transactional_db" if "transactional_db" in request.fixturenames else "db"
        )
        cache.clear()
    # The conversion watch's own once-a-minute, kept in the process.
    defences._Watch.next_look = 0.0


@pytest.fixture
def outbox():
    return verification.outbox


@pytest.fixture
def user(db):
    return UserFactory(phone_number_for_2fa=NUMBER)


def last_code(outbox, number=NUMBER):
    """Return the code in the last message sent to `number`."""
    sent = [message for message in outbox if message.number == number]
    assert sent, f"no message was sent to {number}"
    return sent[-1].code


def pending(client):
    """Return the pending verification stored in the client's session, if any."""
    return client.session.get(PENDING_SESSION_KEY)


def messages_of(response):
    return [str(message) for message in response.context["messages"]] if response.context else []


def start_login(client, number=NUMBER, **extra):
    return client.post("/login/", {"number": number}, **extra)


def stored_text() -> str:
    """Return everything the site has stored: every table, and the cache decoded.

    For tests that prove a code or a number is not kept in plain text: the
    database cache's values are pickles in base64 and sessions are encoded,
    so both are decoded; a Redis cache is read key by key.
    """
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                texts.append(repr(tuple(map(without_microseconds, row))))
                record = dict(zip(columns, row, strict=True))
                if table == "django_cache":
                    texts.append(repr(pickle.loads(base64.b64decode(record["value"]))))  # noqa: S301
                if table == "django_session":
                    texts.append(repr(SessionStore().decode(record["session_data"])))
    if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        keys = cache.keys("*")
        texts.extend(f"{key!r}: {value!r}" for key, value in cache.get_many(keys).items())
    return "\n".join(texts)


def without_microseconds(value):
    """Return a stored value with a timestamp cut to the second.

    A timestamp's microseconds are six digits, as a code is: left in, they
    would match some code by chance about once in a thousand runs.
    """
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    return value


def holds_code(text: str, code: str) -> bool:
    """Return whether a code appears in text as a number of its own.

    A code written down stands alone ("code: 839473"); the same six digits
    inside a longer run of letters and digits (a hex request id, a hash) are
    chance, not a leak.
    """
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])", text) is not None
