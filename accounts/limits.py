"""Rate limits on sending and checking codes, shared by the web pages and the API.

Counters live in the default cache (django-ratelimit's keys and windows), under
group names that every entry point uses, so a client cannot get around a limit
by switching between them. Rates come from settings (VERIFY_RATE_*). A request
that one limit refuses is counted by none: refusals use up nobody's allowance.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import time
import unicodedata

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core

from . import defences
from .exceptions import RateLimited, SendingPaused, WrongCodeLockout

logger = logging.getLogger(__name__)
# A proxy count the requests contradict is a setting to fix, not an event:
# said once per process (the first such request), not once per request.
_proxy_count_warned = False


def client_ip(request) -> str:
    """Return the address of the client that sent `request`.

    With TRUSTED_PROXY_COUNT = 0 (the default) that is REMOTE_ADDR: the
    X-Forwarded-For header is written by the client and would let anyone pick
    a fresh address for every request. Behind N proxies of ours, each appends
    the address it got the request from, so the Nth entry from the right is
    the one the first proxy saw, and everything left of it may be forged. A
    request with fewer entries did not come through every proxy, and one whose
    entry is not an IP address is malformed: both count against REMOTE_ADDR.
    """
    # Read by the limits and the log several times a request: worked out once.
    try:
        return request._client_ip
    except AttributeError:
        request._client_ip = address = _client_ip(request)
        return address


def _client_ip(request) -> str:
    remote_addr = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote_addr
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [entry.strip() for entry in header.split(",")] if header else []
    if len(forwarded) < proxies:
        global _proxy_count_warned
        if not _proxy_count_warned:
            _proxy_count_warned = True
            logger.warning(
                "TRUSTED_PROXY_COUNT=%d, but a request from %s came with %d X-Forwarded-For "
                "entries: it did not come through that many proxies, so limits count it "
                "against REMOTE_ADDR. Set TRUSTED_PROXY_COUNT to the number of proxies in "
                "front of the site (0 for none). Logged once per process.",
                proxies,
                remote_addr,
                len(forwarded),
            )
        return remote_addr
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote_addr


def client_key(request) -> str:
    """Return what the per-client limits count: the client's IPv4 address, or its IPv6 network.

    An IPv6 subscriber usually gets a whole /64, 2**64 addresses: counted
    per address, one client could send every request from a fresh one. The
    network is RATELIMIT_IPV6_MASK bits (64); an IPv4-mapped address counts
    as the IPv4 address it carries. The log keeps the full address.
    """
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/{settings.RATELIMIT_IPV6_MASK}", strict=False))


def _count(request, hits, *, peek=(), then=()) -> list[tuple[str, int, int, int]]:
    """Count one hit on each (group, value, rate) of `hits` and `then`, and read those
    of `peek`, unless one of them refuses: then none is counted.

    A hit refuses when its counter already stands at its limit, a read when
    it has reached it (a lockout). All or nothing: a request one limit refuses
    is counted by no other, so that refused requests cannot use up a number's,
    a range's or the site's allowance, nor a client's. Counters are looked at
    in order, `hits`, `peek`, then `then`, up to the first that refuses.

    Return (group, count, limit, time_left) for each counter looked at, the
    count a hit has with this request. With Redis the whole step is one
    script, one round trip; other caches count one counter at a time and give
    the hits back when one refuses.
    """
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return []
    counters = [
        *[(counter, _HIT) for counter in hits],
        *[(counter, _READ) for counter in peek],
        *[(counter, _HIT) for counter in then],
    ]
    cache = caches[settings.RATELIMIT_USE_CACHE]
    if type(cache).__module__.startswith("django_redis"):
        return _count_in_redis(cache, counters)
    with _one_at_a_time(cache):
        return _count_in_cache(cache, counters)


_HIT, _READ = "hit", "read"

# The counting of _count() inside Redis, atomic. KEYS are the counters, ARGV
# holds "mode limit seconds-to-live" for each. Every counter is read first;
# only when none refuses are the hits counted, each opened with its window's
# lifetime, as django-ratelimit's add() and incr() would.
_COUNT_SCRIPT = """
local counts = {}
local refused = false
for i, key in ipairs(KEYS) do
  local mode, limit = string.match(ARGV[i], "^(%a+) (%d+)")
  local count = tonumber(redis.call("GET", key)) or 0
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


@functools.lru_cache(maxsize=64)
def _split_rate(rate: str) -> tuple[int, int]:
    # Rates come from settings: a handful of strings, each parsed once.
    return ratelimit_core._split_rate(rate)


def _counter_key(group: str, value: str, rate: str) -> tuple[str, int, int, int]:
    """Return (cache key, limit, seconds to live, end of window) of a counter.

    The same keys and windows as django-ratelimit's get_usage (its private
    helpers, from the pinned 4.1.0), so readers through get_usage agree.
    _make_cache_key takes the rate already split, as its own _split_rate does.
    """
    limit, period = _split_rate(rate)
    window = ratelimit_core._get_window(value, period)
    key = ratelimit_core._make_cache_key(group, window, (limit, period), value, ALL)
    return key, limit, period + ratelimit_core.EXPIRATION_FUDGE, window


def _count_in_redis(cache, counters):
    now = int(time.time())
    keys, args, windows = [], [], []
    for (group, value, rate), mode in counters:
        key, limit, ttl, window = _counter_key(group, value, rate)
        keys.append(cache.make_key(key))
        args.append(f"{mode} {limit} {ttl}")
        windows.append((group, limit, window))
    client = cache.client.get_client(write=True)
    counts = _count_script(client)(keys=keys, args=args, client=client)
    return [
        (group, int(count), limit, window - now)
        for (group, limit, window), count in zip(windows, counts, strict=False)
    ]


@functools.cache
def _count_script(client):
    # A Script runs by its SHA1 and loads itself into a Redis that lost it.
    return client.register_script(_COUNT_SCRIPT)


def _count_in_cache(cache, counters):
    # Memcached and LocMem increment atomically but know nothing of several
    # keys at once: hits are counted as they come and given back when one
    # refuses. Under a race that may refuse a request that would have fitted,
    # never let one through that does not.
    now = int(time.time())
    counted, taken = [], []
    refused = False
    for (group, value, rate), mode in counters:
        key, limit, ttl, window = _counter_key(group, value, rate)
        count = _hit(cache, key, ttl) if mode == _HIT else cache.get(key, 0)
        if count is None:
            # The cache could not count: fail closed, for a minute.
            counted.append((group, 1, 0, 60))
            refused = True
            break
        if mode == _HIT:
            taken.append(key)
        counted.append((group, count, limit, window - now))
        refused = count > limit if mode == _HIT else count >= limit
        if refused:
            break
    if refused:
        for key in taken:
            with contextlib.suppress(ValueError):
                cache.decr(key)
    return counted


def _hit(cache, key: str, ttl: int) -> int | None:
    """Count one on `key`, opened for `ttl` seconds; return the count, None when the cache fails."""
    if cache.add(key, 1, ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        # Expired between the two, or the cache could not write: once more.
        return 1 if cache.add(key, 1, ttl) else None


@contextlib.contextmanager
def _one_at_a_time(cache):
    """On a database cache, run the block as one transaction no other counting interleaves.

    Django's database cache increments with a read and a write: two requests
    counting together would both read 4 and both write 5. On SQLite the
    transaction holds the database's write lock from its start (the settings
    make SQLite transactions IMMEDIATE), so others wait their turn (the busy
    timeout) instead of failing; on PostgreSQL an advisory lock does the same.
    Other caches count atomically themselves.
    """
    if not isinstance(cache, DatabaseCache):
        yield
        return
    alias = router.db_for_write(cache.cache_model_class)
    with transaction.atomic(using=alias):
        connection = connections[alias]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COUNTING_LOCK])
        yield


# PostgreSQL's advisory lock held while the database cache counts: any
# number no other part of the site takes.
_COUNTING_LOCK = 0x5057_4C53


WRONG_CODES = "verify.wrong.number"
SITE_CAPS = "verify.start.site"


def _wrong_codes(number: str) -> tuple[str, str, str]:
    return (WRONG_CODES, number, settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER)


def _refuse(counted) -> None:
    """Raise RateLimited for the first counter over its limit, in order.

    The wrong codes of a number are read, not counted: the number is locked
    once it has had `limit` of them. The site-wide caps pause sending for
    everybody (SendingPaused).
    """
    for group, count, limit, time_left in counted:
        if group == WRONG_CODES:
            if count >= limit:
                raise WrongCodeLockout(retry_after=time_left, scope=group)
        elif count <= limit:
            continue
        elif group.startswith(SITE_CAPS):
            defences.sending_paused_alert(group)
            raise SendingPaused(f"site-wide cap {group} reached")
        else:
            raise RateLimited(retry_after=time_left, scope=group)


def _enforce(request, limits):
    """Count one hit on each (group, value, rate); raise RateLimited for the first one over."""
    _refuse(_count(request, limits))


def limit_start(request, *, number: str) -> None:
    """Count a code sent to `number` (a start, a resend or a call), or refuse it.

    Raises RateLimited for this client, number or number range; NumberNotAllowed
    for a country or number type the site does not serve; SendingPaused when
    the site-wide caps are reached. Refusals never reach the provider.
    """
    refusal = defences.number_refusal(number)
    if refusal:
        # Nothing can go out to this number, whatever the limits say: it is
        # counted nowhere.
        raise refusal
    caps = [
        (f"{SITE_CAPS}.hour", "site", f"{settings.VERIFY_MAX_SENDS_PER_HOUR}/h"),
        (f"{SITE_CAPS}.day", "site", f"{settings.VERIFY_MAX_SENDS_PER_DAY}/d"),
    ]
    counted = _count(
        request,
        [("verify.start.ip", client_key(request), settings.VERIFY_RATE_START_PER_IP)],
        # A number locked out for wrong codes would get a code it cannot use,
        # paid for all the same.
        peek=[_wrong_codes(number)],
        # Counted only with the rest (_count): a start refused for the client,
        # the number or its range uses up nobody else's codes.
        then=[
            ("verify.start.number", number, settings.VERIFY_RATE_START_PER_NUMBER),
            ("verify.start.prefix", defences.number_prefix(number), settings.VERIFY_PREFIX_RATE),
            # A cap of 0 is no cap.
            *[cap for cap in caps if not cap[2].startswith("0/")],
        ],
    )
    _refuse(counted)


def limit_check(request, *, session_key: str, number: str) -> None:
    """Count a code typed in this session and from this client; refuse a locked-out number.

    Raises RateLimited (WrongCodeLockout when `number` has had too many wrong
    codes, whatever the session or client).
    """
    counted = _count(
        request,
        [
            ("verify.check.session", session_key, settings.VERIFY_RATE_CHECK_PER_SESSION),
            ("verify.check.ip", client_key(request), settings.VERIFY_RATE_CHECK_PER_IP),
        ],
        peek=[_wrong_codes(number)],
    )
    _refuse(counted)


def limit_adopt(request, *, number: str) -> None:
    """Refuse taking over `number`'s live request while the number is locked out.

    Adopting a request sends nothing, so it counts against no limit; but a
    number locked out for wrong codes is told so now, not after a code.
    """
    _refuse(_count(request, [], peek=[_wrong_codes(number)]))


def record_wrong_code(request, *, number: str) -> None:
    """Count a wrong code for `number`, whatever the session or client.

    Counted up to the limit, where the number is locked out; checks of a
    locked number are refused before they reach the provider.
    """
    _count(request, [_wrong_codes(number)])


def _password_limits(request, username: str):
    # The form logs a full-width "alice" in as "alice" (NFKC, like UsernameField): the
    # counter must not tell them apart either.
    username = unicodedata.normalize("NFKC", username).strip().casefold()
    return [
        ("login.password.ip", client_key(request), settings.LOGIN_RATE_PASSWORD_PER_IP),
        ("login.password.username", username, settings.LOGIN_RATE_PASSWORD_PER_USERNAME),
    ]


def limit_password_attempt(request, *, username: str) -> None:
    """Count a password attempt before it is checked; refuse it when over the limit.

    Counted first, atomically, so that parallel guesses cannot all slip past a
    counter still at zero; a right password gives its count back
    (password_attempt_uncount).
    """
    _enforce(request, _password_limits(request, username))


def password_attempt_uncount(request, *, username: str) -> None:
    """Give back the count of an attempt that was not a wrong password."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    with _one_at_a_time(cache):
        for group, value, rate in _password_limits(request, username):
            key, _limit, _ttl, _window = _counter_key(group, value, rate)
            with contextlib.suppress(ValueError):
                cache.decr(key)


def limit_phone_change(request, *, user_id: int) -> None:
    """Count a new phone number tried on the account page, per account and per client."""
    _enforce(
        request,
        [
            ("account.phone.user", str(user_id), settings.ACCOUNT_RATE_PHONE_CHANGE_PER_USER),
            ("account.phone.ip", client_key(request), settings.ACCOUNT_RATE_PHONE_CHANGE_PER_IP),
        ],
    )
