"""The rate-limit counters (flows.counters): rates, windows, keys, and counting on every cache.

The site owns its counters end to end: how a rate is written, when a window
starts and ends, what a key holds, and how a step is counted all or nothing
on Redis, Django's database cache and the caches that count one key at a
time. And when the cache cannot count, the step is refused the same way
whatever the cache, whether it raises its error or swallows it
(DJANGO_REDIS_IGNORE_EXCEPTIONS): the 503 page or the API's status "5",
nothing sent, nobody logged in, never a step let through uncounted.

The Redis cases run in the PostgreSQL + Redis run (make test-services), on
the run's own Redis; the outages are Redis clients pointed at a loopback
port nothing listens on.
"""

from __future__ import annotations

import logging
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache, caches
from django.core.management import call_command
from django.db import connection
from redis.exceptions import ConnectionError as RedisConnectionError

from flows import counters
from flows.counters import Counter, CountersUnavailable, Rate, parse_rate
from flows.services import PENDING_SESSION_KEY
from passwordless import outages

from .conftest import NUMBER, last_code
from .factories import UserFactory
from .test_infrastructure_faults import (
    assert_api_unavailable,
    assert_unavailable_page,
    closed_port,
    stored,
    visitor,
)
from .test_production_settings import run_python

pytestmark = [
    pytest.mark.django_db,
    # django-redis's own add() and get() on a sharded client.
    pytest.mark.filterwarnings("ignore:.* on sharded client should not specify client"),
]

START = "2030-01-01 12:00Z"
ALIAS = "counters-under-test"
PASSWORD = "correct horse battery staple"


# Rates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "limit", "period"),
    [
        ("5/15m", 5, 15 * 60),
        ("10/h", 10, 3600),
        ("3/d", 3, 86400),
        ("30/s", 30, 1),
        ("1000/2h", 1000, 7200),
        ("0/h", 0, 3600),
    ],
)
def test_a_rate_is_a_count_per_period_in_seconds_minutes_hours_or_days(written, limit, period):
    assert parse_rate(written) == Rate(limit=limit, period=period)


@pytest.mark.parametrize(
    "written", ["5/15M", "5/15", "5/0m", "5/15mm", "five/h", " 5/h", "-1/h", ""]
)
def test_a_rate_written_otherwise_is_refused_with_how_to_write_one(written):
    with pytest.raises(ValueError, match=r"is not a rate: write count/period.*5/15m, 10/h or 3/d"):
        parse_rate(written)


def test_a_mistyped_rate_stops_the_start_and_names_the_setting():
    # "15M" read as fifteen seconds (django-ratelimit's reading) would
    # quietly make a limit sixty times weaker.
    done = run_python("import django; django.setup()", VERIFY_RATE_START_PER_IP="5/15M")
    assert done.returncode != 0
    assert "ImproperlyConfigured: VERIFY_RATE_START_PER_IP: '5/15M' is not a rate" in done.stderr


def test_a_negative_site_cap_stops_the_start():
    done = run_python("import django; django.setup()", VERIFY_MAX_SENDS_PER_DAY="-1")
    assert done.returncode != 0
    assert "VERIFY_MAX_SENDS_PER_DAY must be 0 (no cap) or more" in done.stderr


# Windows and keys ---------------------------------------------------------------------

VALUES = [NUMBER, "+14155550101", "203.0.113.7", "2001:db8:1:2::/64", "alice", "session-key"]


@pytest.mark.parametrize("rate", ["5/15m", "10/h", "3/d"])
def test_a_window_lasts_one_period_and_the_next_starts_where_it_ends(rate):
    now = 1_893_499_200
    for value in VALUES:
        counter = Counter("group", value, parse_rate(rate))
        start, end = counter.window(now)
        assert start <= now < end
        assert end - start == counter.rate.period
        assert counter.window(end - 1) == (start, end)
        assert counter.window(end) == (end, end + counter.rate.period)
        assert counter.key(end - 1) == counter.key(start)
        assert counter.key(end) != counter.key(start)


def test_the_windows_of_different_values_end_at_different_seconds():
    # Counters do not all reset in the same second, when a burst that waited
    # for it would find every one of them at zero.
    ends = {
        Counter("verify.start.number", f"+1415555{index:04d}", parse_rate("3/15m")).window(0)[1]
        for index in range(20)
    }
    assert len(ends) > 10


def test_a_key_names_the_group_and_the_window_never_the_value(settings):
    for value in VALUES:
        counter = Counter("verify.start.number", value, parse_rate("3/15m"))
        key = counter.key(1_893_499_200)
        start, _end = counter.window(1_893_499_200)
        assert key.startswith(f"rl:verify.start.number:900:{start}:")
        assert value not in key
        assert value.lstrip("+") not in key
    # Groups and periods keep their counters apart.
    number = Counter("verify.start.number", NUMBER, parse_rate("3/15m"))
    assert number.key(0) != Counter("verify.start.ip", NUMBER, parse_rate("3/15m")).key(0)
    assert number.key(0) != Counter("verify.start.number", NUMBER, parse_rate("3/h")).key(0)
    # The digest is keyed: without SECRET_KEY, nobody can tell which number a
    # key counts by hashing every number.
    settings.SECRET_KEY = "another secret key, for another site, at least fifty characters long"
    assert Counter("verify.start.number", NUMBER, parse_rate("3/15m")).key(0) != number.key(0)


def test_what_a_start_stores_names_no_phone_number_or_address(client, outbox):
    client.post("/login/", {"number": NUMBER}, REMOTE_ADDR="203.0.113.77")
    if django_settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        keys = [str(key) for key in cache.keys("*")]
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT cache_key FROM django_cache")
            keys = [row[0] for row in cursor.fetchall()]
    # Django's make_key() puts its prefix and version in front: ":1:rl:…".
    limit_keys = [key[key.index("rl:") :] for key in keys if "rl:" in key]
    assert {key.split(":")[1] for key in limit_keys} >= {
        "verify.start.ip",
        "verify.start.number",
        "verify.start.prefix",
    }
    for key in limit_keys:
        assert "4155550100" not in key
        assert "203.0.113.77" not in key


# Counting on every cache ------------------------------------------------------------------


def _redis_location() -> str:
    default = django_settings.CACHES["default"]
    if default["BACKEND"] != "django_redis.cache.RedisCache":
        pytest.fail("the services run's cache must be Redis (CACHE_URL=redis://…)")
    return default["LOCATION"]


def _cache_config(kind: str) -> dict:
    if kind == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": ALIAS}
    if kind == "database":
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    options = {}
    if kind == "sharded redis":
        # Counted one key at a time: a script cannot span the shards.
        options["CLIENT_CLASS"] = "django_redis.client.ShardClient"
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _redis_location(),
        "OPTIONS": options,
    }


@pytest.fixture(
    params=[
        "locmem",
        "database",
        pytest.param("redis", marks=pytest.mark.services),
        pytest.param("sharded redis", marks=pytest.mark.services),
    ]
)
def counting_cache(request, settings):
    """The name of a cache of each kind the counters know, empty."""
    settings.CACHES = {**settings.CACHES, ALIAS: _cache_config(request.param)}
    if request.param == "database":
        # Made by `migrate` only when the run's own cache is the database's.
        call_command("createcachetable", database="default", verbosity=0)
    caches[ALIAS].clear()
    yield ALIAS
    caches[ALIAS].clear()


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def hit(group, value="v", rate="3/h"):
    return Counter(group, value, parse_rate(rate))


def lockout(group, value="v", rate="3/h"):
    return Counter(group, value, parse_rate(rate), hit=False)


def step(using, *counters_of_the_step):
    """Count a step; return {group: count} of the counters looked at, and the refusing group."""
    counted = counters.count(counters_of_the_step, using=using)
    refused = [count.counter.group for count in counted if count.refuses]
    return {count.counter.group: count.count for count in counted}, (refused or [None])[0]


def test_hits_count_up_to_the_limit_and_the_refused_one_is_not_counted(counting_cache):
    answers = [step(counting_cache, hit("a")) for _ in range(5)]
    assert answers == [
        ({"a": 1}, None),
        ({"a": 2}, None),
        ({"a": 3}, None),
        ({"a": 4}, "a"),
        ({"a": 4}, "a"),
    ]
    assert counters.read(hit("a"), using=counting_cache) == 3


def test_a_step_one_counter_refuses_is_counted_by_none(counting_cache):
    wide, narrow = hit("wide", rate="10/h"), hit("narrow", rate="1/h")
    assert step(counting_cache, wide, narrow) == ({"wide": 1, "narrow": 1}, None)
    for _ in range(3):
        assert step(counting_cache, wide, narrow) == ({"wide": 2, "narrow": 2}, "narrow")
    assert counters.read(wide, using=counting_cache) == 1
    assert counters.read(narrow, using=counting_cache) == 1


def test_a_read_counts_nothing_and_refuses_once_the_limit_is_reached(counting_cache):
    other = hit("other", rate="10/h")
    assert step(counting_cache, other, lockout("locked", rate="2/h")) == (
        {"other": 1, "locked": 0},
        None,
    )
    step(counting_cache, hit("locked", rate="2/h"))
    step(counting_cache, hit("locked", rate="2/h"))
    assert step(counting_cache, other, lockout("locked", rate="2/h")) == (
        {"other": 2, "locked": 2},
        "locked",
    )
    # The hit before the lockout was given back: the step was refused.
    assert counters.read(other, using=counting_cache) == 1


def test_time_left_is_until_the_window_ends(counting_cache, clock):
    counter = hit("a", rate="3/h")
    _start, end = counter.window()
    [count] = counters.count([counter], using=counting_cache)
    assert count.time_left == end - _now()


def _now() -> int:
    return int(time.time())


def test_a_new_window_counts_from_zero(counting_cache, clock):
    counter = hit("a", rate="2/h")
    for _ in range(3):
        step(counting_cache, counter)
    assert step(counting_cache, counter) == ({"a": 3}, "a")
    _start, end = counter.window()
    clock.shift(end - _now())
    assert step(counting_cache, counter) == ({"a": 1}, None)


def test_a_counter_keeps_its_count_for_its_whole_window(counting_cache, clock):
    # Django's database cache gives a key its default timeout (five minutes)
    # on every incr(): a lockout of an hour would have lasted five minutes.
    counter = hit("a", rate="3/h")
    _start, end = counter.window()
    clock.shift(end - _now())  # the first second of a window
    step(counting_cache, counter)
    step(counting_cache, counter)
    clock.shift(59 * 60)
    assert counters.read(counter, using=counting_cache) == 2
    assert step(counting_cache, counter) == ({"a": 3}, None)
    assert step(counting_cache, counter) == ({"a": 4}, "a")


def test_give_back_takes_one_count_back(counting_cache):
    counter = hit("a", rate="3/h")
    for _ in range(3):
        step(counting_cache, counter)
    counters.give_back([counter], using=counting_cache)
    assert counters.read(counter, using=counting_cache) == 2
    assert step(counting_cache, counter) == ({"a": 3}, None)
    # Nothing to take back from a counter that has counted nothing.
    counters.give_back([hit("never")], using=counting_cache)
    assert counters.read(hit("never"), using=counting_cache) == 0


# The cache cannot count ----------------------------------------------------------------


def _redis_down(*, sharded: bool, ignore: bool) -> dict:
    options = {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}
    location = f"redis://127.0.0.1:{closed_port()}/0"
    if sharded:
        options["CLIENT_CLASS"] = "django_redis.client.ShardClient"
        location = [location, f"redis://127.0.0.1:{closed_port()}/0"]
    if ignore:
        options["IGNORE_EXCEPTIONS"] = True
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}


# (cache, DJANGO_REDIS_IGNORE_EXCEPTIONS): Redis raising its error, or
# swallowing it (get() answers the default, incr() None), through the script
# or one key at a time.
OUTAGES = {
    "redis down": (dict(sharded=False, ignore=False), False),
    "redis down, DJANGO_REDIS_IGNORE_EXCEPTIONS": (dict(sharded=False, ignore=False), True),
    "redis down, IGNORE_EXCEPTIONS": (dict(sharded=False, ignore=True), False),
    "sharded redis down": (dict(sharded=True, ignore=False), False),
    "sharded redis down, DJANGO_REDIS_IGNORE_EXCEPTIONS": (dict(sharded=True, ignore=False), True),
}


@pytest.fixture(autouse=True)
def _no_incident_left_over():
    outages.reset()
    yield
    outages.reset()


class People:
    """People who started while the counters counted: a login, and an API request."""

    def __init__(self, outbox):
        self.mid_login = visitor()
        assert self.mid_login.post("/login/", {"number": NUMBER})["Location"] == "/verify/"
        self.code = last_code(outbox)
        self.api = visitor()
        response = self.api.post(
            "/api/verify/request", {"number": "+14155550142"}, content_type="application/json"
        )
        assert response.status_code == 200
        self.request_id = response.json()["request_id"]
        self.api_code = last_code(outbox, "+14155550142")
        self.user = UserFactory(username="someone", password=PASSWORD)


@pytest.fixture(params=list(OUTAGES))
def counters_down(request, settings, outbox):
    """People mid-way, then the counters' cache (and only it) goes away."""
    people = People(outbox)
    cache_options, ignore_everywhere = OUTAGES[request.param]
    settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = ignore_everywhere
    settings.CACHES = {**settings.CACHES, "limits": _redis_down(**cache_options)}
    settings.RATELIMIT_USE_CACHE = "limits"
    return people


def test_a_start_is_refused_and_nothing_sent(counters_down, outbox):
    sent, before = len(outbox), stored()
    response = visitor().post("/login/", {"number": "+14155550177"})
    assert_unavailable_page(response)
    assert len(outbox) == sent
    assert stored() == before


def test_taking_over_a_live_request_is_refused(counters_down, outbox):
    # Another browser asks for the number whose code is on its way: no
    # code is sent, but the lockout must be read before it is adopted.
    sent, before = len(outbox), stored()
    response = visitor().post("/login/", {"number": NUMBER})
    assert_unavailable_page(response)
    assert len(outbox) == sent
    assert stored() == before


def test_a_right_code_is_refused_and_nobody_logged_in(counters_down, outbox):
    people = counters_down
    sent, before = len(outbox), stored()
    response = people.mid_login.post("/verify/", {"code": people.code})
    assert_unavailable_page(response)
    assert SESSION_KEY not in people.mid_login.session
    assert people.mid_login.session[PENDING_SESSION_KEY]["number"] == NUMBER
    assert len(outbox) == sent
    assert stored() == before


def test_a_right_password_is_refused_before_it_is_checked(counters_down):
    before = stored()
    response = visitor().post("/login/password/", {"username": "someone", "password": PASSWORD})
    assert_unavailable_page(response)
    assert stored() == before


@pytest.mark.parametrize("endpoint", ["request", "check"])
def test_the_api_answers_status_5(counters_down, outbox, endpoint):
    people = counters_down
    sent, before = len(outbox), stored()
    if endpoint == "request":
        data = {"number": "+14155550177"}
    else:
        data = {"request_id": people.request_id, "code": people.api_code}
    path = f"/api/verify/{endpoint}"
    response = people.api.post(path, data, content_type="application/json")
    assert_api_unavailable(response, path)
    assert len(outbox) == sent
    assert stored() == before


def test_the_operator_reads_one_line_naming_the_cache(counters_down, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert visitor().post("/login/", {"number": "+14155550177"}).status_code == 503
        response = counters_down.mid_login.post("/verify/", {"code": counters_down.code})
        assert response.status_code == 503
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(errors) == 1, errors
    assert errors[0].startswith("dependency unavailable: cache (")
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("sharded", "ignore", "raised"),
    [
        # The script runs on Redis's own client, which raises whatever
        # django-redis would have swallowed.
        (False, False, RedisConnectionError),
        (False, True, RedisConnectionError),
        (True, False, RedisConnectionError),
        # One key at a time through the cache, which answers None for a
        # count and the default for a read.
        (True, True, CountersUnavailable),
    ],
)
def test_counting_that_cannot_be_done_raises_an_outage(settings, sharded, ignore, raised):
    settings.CACHES = {**settings.CACHES, "limits": _redis_down(sharded=sharded, ignore=ignore)}
    for counter in (hit("a"), lockout("a")):
        with pytest.raises(raised) as refused:
            counters.count([counter], using="limits")
        assert outages.unavailable_dependency(refused.value) == outages.CACHE


def test_with_the_sites_whole_redis_down_and_its_errors_ignored_nothing_gets_through(
    settings, outbox
):
    """Production with DJANGO_REDIS_IGNORE_EXCEPTIONS: sessions, codes and counters in one Redis.

    The sessions fall back to the database (cached_db) and every other read
    of the cache answers "nothing there"; the counters still refuse.
    """
    settings.SESSION_ENGINE = "passwordless.sessions.cached_db"
    settings.VERIFY_RESEND_COOLDOWN = 0
    mid_login = visitor()
    assert mid_login.post("/login/", {"number": NUMBER})["Location"] == "/verify/"
    code = last_code(outbox)
    settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    settings.CACHES = {"default": _redis_down(sharded=False, ignore=False)}
    sent, before = len(outbox), stored()

    assert_unavailable_page(visitor().post("/login/", {"number": "+14155550177"}))
    assert_unavailable_page(mid_login.post("/verify/", {"code": code}))
    assert_unavailable_page(mid_login.post("/verify/resend/"))
    assert len(outbox) == sent
    assert stored() == before
