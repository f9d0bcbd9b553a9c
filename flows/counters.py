"""Rate-limit counters in a cache: rates, windows, keys and counting, owned by the site.

A counter counts what one group ("verify.start.number") saw of one value (a
phone number, an address, a session key) during a fixed window of its
rate's period. `flows.limits` says which counters a step counts; this
module counts them, all or nothing, in the cache RATELIMIT_USE_CACHE names:

- Redis through django-redis: one Lua script per step, atomic, one round trip.
- Django's database cache (development): inside one transaction that other
  counting waits for, since its increment is a read and then a write.
- Any other cache (LocMem, Memcached, a sharded Redis): one counter at a time
  with add() and incr(), which those caches do atomically; the hits already
  counted are given back when a later counter refuses.

Keys are "rl:<group>:<period>:<window start>:<digest>". The digest is an
HMAC of the value under SECRET_KEY: phone numbers, addresses and usernames
never appear in the cache's key names, and changing SECRET_KEY starts every
counter afresh. Each value's windows start at an offset taken from the same
digest, so that the counters of a group do not all reset in the same second.

A cache that cannot count refuses the step; it never lets one through
uncounted. When the cache raises (Redis down, a database error), its error
propagates, and passwordless.outages answers it with the 503 page or the
API's status "5". When it swallows the error and answers with nothing, as
django-redis does with DJANGO_REDIS_IGNORE_EXCEPTIONS, counting raises
CountersUnavailable, answered the same way.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.db import connections, router, transaction
from django.utils.crypto import salted_hmac

KEY_PREFIX = "rl"
# Seconds a counter outlives its window: the web servers' clocks, which pick
# the window, may lag the cache's, which expires the key.
EXPIRY_MARGIN = 5

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"(?P<limit>[0-9]+)/(?P<multiplier>[0-9]*)(?P<unit>[smhd])")


class CountersUnavailable(Exception):
    """The cache answered without counting: the step is refused, nothing is let through."""


@dataclass(frozen=True)
class Rate:
    """At most `limit` in a window of `period` seconds."""

    limit: int
    period: int


@functools.lru_cache(maxsize=128)
def parse_rate(rate: str) -> Rate:
    """Return the Rate that `rate` writes as "count/period": "5/15m", "10/h", "3/d".

    The period is s, m, h or d (seconds, minutes, hours, days), with an
    optional multiplier: "15m" is fifteen minutes. Raise ValueError for
    anything else, saying how to write one.
    """
    match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
    multiplier = int(match["multiplier"] or 1) if match else 0
    if not multiplier:
        raise ValueError(
            f"{rate!r} is not a rate: write count/period, the period in s, m, h or d with "
            "an optional multiplier, e.g. 5/15m, 10/h or 3/d."
        )
    return Rate(limit=int(match["limit"]), period=multiplier * _PERIODS[match["unit"]])


@dataclass(frozen=True)
class Counter:
    """The counter of `group` for `value` at `rate`: counted one (`hit`), or only read."""

    group: str
    value: str
    rate: Rate
    hit: bool = True

    @functools.cached_property
    def _digest(self) -> str:
        # The module's path before the split: a new salt would restart every counter.
        return salted_hmac("accounts.counters", self.value, algorithm="sha256").hexdigest()[:32]

    @property
    def offset(self) -> int:
        """Return the second of each period at which this value's windows start."""
        return int(self._digest[:8], 16) % self.rate.period

    def window(self, now: int | None = None) -> tuple[int, int]:
        """Return (start, end) in seconds since the epoch of the window holding `now`."""
        if now is None:
            now = int(time.time())
        period = self.rate.period
        start = now - (now - self.offset) % period
        return start, start + period

    def key(self, now: int | None = None) -> str:
        """Return the cache key of this counter in the window holding `now`."""
        start, _end = self.window(now)
        return f"{KEY_PREFIX}:{self.group}:{self.rate.period}:{start}:{self._digest}"


@dataclass(frozen=True)
class Count:
    """What a counter holds with this step, and whether that refuses the step."""

    counter: Counter
    count: int
    time_left: int  # seconds until the window ends

    @property
    def refuses(self) -> bool:
        """Whether the step stops here: a hit past the limit, a read (a lockout) at it."""
        return _refuses(self.counter, self.count)


def _refuses(counter: Counter, value: int) -> bool:
    limit = counter.rate.limit
    return value > limit if counter.hit else value >= limit


def count(counters: Sequence[Counter], *, using: str = "default") -> list[Count]:
    """Count one on each hit of `counters` and read the others, unless one refuses: then none.

    Counters are looked at in order, up to the first that refuses. All or
    nothing, so that a step one counter refuses uses up no other's allowance.
    Return the Count of each counter looked at. Raise CountersUnavailable, or
    the cache's own error, when the cache cannot count.
    """
    if not counters:
        return []
    now = int(time.time())
    plan = [_Planned(counter, now) for counter in counters]
    cache = caches[using]
    redis = _redis_client(cache, using)
    if redis is not None:
        counts = _count_in_redis(cache, redis, plan)
    elif isinstance(cache, BaseDatabaseCache):
        with _database_lock(cache):
            counts = _count_in_database(cache, plan)
    else:
        counts = _count_one_by_one(cache, plan)
    return [
        Count(counter=planned.counter, count=value, time_left=planned.end - now)
        for planned, value in zip(plan, counts, strict=False)
    ]


def read(counter: Counter, *, using: str = "default") -> int:
    """Return what `counter` holds in this window, counting nothing."""
    if counter.hit:
        counter = Counter(counter.group, counter.value, counter.rate, hit=False)
    return count([counter], using=using)[0].count


def give_back(counters: Sequence[Counter], *, using: str = "default") -> None:
    """Take back one count from each of `counters`, counted earlier in this window.

    For a step that turned out not to count (a right password). A count the
    cache cannot give back stays: a limit reached one early, never one late.
    """
    now = int(time.time())
    plan = [_Planned(counter, now) for counter in counters]
    cache = caches[using]
    if isinstance(cache, BaseDatabaseCache):
        with _database_lock(cache):
            stored = cache.get_many([planned.key for planned in plan])
            for planned in plan:
                value = stored.get(planned.key)
                if isinstance(value, int) and value > 0:
                    cache.set(planned.key, value - 1, planned.ttl)
        return
    for planned in plan:
        # Gone already (its window ended): nothing to take back.
        with contextlib.suppress(ValueError):
            cache.decr(planned.key)


class _Planned:
    """A counter with its key, its window's end and its time to live, all as of `now`."""

    __slots__ = ("counter", "end", "key", "ttl")

    def __init__(self, counter: Counter, now: int):
        self.counter = counter
        _start, self.end = counter.window(now)
        self.key = counter.key(now)
        self.ttl = self.end - now + EXPIRY_MARGIN


def _checked(value) -> int:
    # A count is an int; None (or False) is what a cache that swallowed its
    # error answers instead.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise CountersUnavailable("the cache answered without counting")


# Redis ----------------------------------------------------------------------------

# count() inside Redis, atomic. KEYS are the counters, ARGV holds
# "hit|read limit seconds-to-live" for each. Every counter is read first; only
# when none refuses are the hits counted, each key expiring with its window.
_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local mode, limit = string.match(ARGV[i], "^(%a+) (%d+)")
  local count = tonumber(redis.call("GET", key)) or 0
  local refused
  if mode == "hit" then
    count = count + 1
    refused = count > tonumber(limit)
  else
    refused = count >= tonumber(limit)
  end
  counts[i] = count
  if refused then
    return counts
  end
end
for i, key in ipairs(KEYS) do
  local mode, _, ttl = string.match(ARGV[i], "^(%a+) (%d+) (%d+)$")
  if mode == "hit" and redis.call("INCR", key) == 1 then
    redis.call("EXPIRE", key, ttl)
  end
end
return counts
"""


def _redis_client(cache, using: str):
    """Return the Redis client of a django-redis cache on one server, else None."""
    if not type(cache).__module__.startswith("django_redis."):
        return None
    from django_redis import get_redis_connection

    try:
        return get_redis_connection(using, write=True)
    except NotImplementedError:
        # A sharded client: a script runs on one server, the counters of a
        # step may live on several.
        return None


def _count_in_redis(cache, client, plan: list[_Planned]) -> list[int]:
    keys = [cache.make_key(planned.key) for planned in plan]
    args = [
        f"{'hit' if planned.counter.hit else 'read'} {planned.counter.rate.limit} {planned.ttl}"
        for planned in plan
    ]
    counts = _count_script(client)(keys=keys, args=args, client=client)
    if not isinstance(counts, list):
        raise CountersUnavailable("Redis answered the counting script without counts")
    return [_checked(value) for value in counts]


@functools.lru_cache(maxsize=16)
def _count_script(client):
    # A Script runs by its SHA1 and loads itself again into a Redis that lost it.
    return client.register_script(_COUNT_SCRIPT)


# Django's database cache -----------------------------------------------------------


def _count_in_database(cache, plan: list[_Planned]) -> list[int]:
    # Run under _database_lock: read everything, decide, then write, as the
    # Redis script does. Written with set() and the window's own timeout:
    # the cache's incr() would give the key the cache's default timeout.
    stored = cache.get_many([planned.key for planned in plan])
    counts, hits = [], {}
    for planned in plan:
        value = _checked(stored.get(planned.key, 0))
        if planned.counter.hit:
            value += 1
            hits[planned.key] = value
        counts.append(value)
        if _refuses(planned.counter, value):
            return counts
    for planned in plan:
        if planned.key in hits:
            cache.set(planned.key, hits[planned.key], planned.ttl)
    # The database cache drops a write it could not make without a word (its
    # set() catches DatabaseError): read the hits back.
    if hits and cache.get_many(list(hits)) != hits:
        raise CountersUnavailable("the database cache did not store the counts")
    return counts


@contextlib.contextmanager
def _database_lock(cache) -> Iterator[None]:
    """Run the block as one transaction that no other counting interleaves.

    Django's database cache increments with a read and a write: two requests
    counting together would both read 4 and both write 5. On SQLite the
    transaction holds the database's write lock from its start (the settings
    make SQLite transactions IMMEDIATE), so others wait their turn (the busy
    timeout) instead of failing; on PostgreSQL an advisory lock does the same.
    """
    alias = router.db_for_write(cache.cache_model_class)
    with transaction.atomic(using=alias):
        connection = connections[alias]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COUNTING_LOCK])
        yield


# PostgreSQL's advisory lock held while the database cache counts: a number
# no other part of the site takes.
_COUNTING_LOCK = 0x5057_4C53


# Other caches ---------------------------------------------------------------------


def _count_one_by_one(cache, plan: list[_Planned]) -> list[int]:
    # Memcached and LocMem increment atomically but know nothing of several
    # keys at once: hits are counted as they come and given back when one
    # refuses. Under a race that may refuse a step that would have fitted,
    # never let one through that does not.
    counts, taken = [], []
    try:
        for planned in plan:
            if planned.counter.hit:
                value = _hit(cache, planned.key, planned.ttl)
                taken.append(planned.key)
            else:
                value = _read(cache, planned.key, planned.ttl)
            counts.append(value)
            if _refuses(planned.counter, value):
                _give_back_now(cache, taken)
                return counts
    except BaseException:
        with contextlib.suppress(Exception):
            _give_back_now(cache, taken)
        raise
    return counts


def _hit(cache, key: str, ttl: int) -> int:
    if cache.add(key, 1, ttl):
        return 1
    try:
        return _checked(cache.incr(key))
    except ValueError:
        # Expired between the two: a window of its own.
        if cache.add(key, 1, ttl):
            return 1
        raise CountersUnavailable("the cache could neither add nor increment a count") from None


def _read(cache, key: str, ttl: int) -> int:
    # A cache that swallows its errors answers get() with the default, as it
    # does for a missing key; add() tells them apart, true only once stored.
    if cache.add(key, 0, ttl):
        return 0
    value = cache.get(key)
    if value is None and cache.add(key, 0, ttl):
        return 0  # expired between the two
    return _checked(value)


def _give_back_now(cache, keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(ValueError):
            cache.decr(key)
