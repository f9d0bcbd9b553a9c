"""Rate limits on sending and checking codes, shared by the web pages and the API.

Counters live in the default cache (django-ratelimit), under group names that
every entry point uses, so a client cannot get around a limit by switching
between them. Rates come from settings (VERIFY_RATE_*).
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
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
from django_ratelimit.core import get_usage

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


def _usage(request, *, group, value, rate, increment):
    return get_usage(
        request, group=group, key=lambda _group, _request: value, rate=rate, increment=increment
    )


def _count(request, limits, *, peek=(), then=()) -> list[tuple[str, int, int, int]]:
    """Count one hit on each (group, value, rate) of `limits`, read those of `peek`,
    then, unless one of those refuses, count a hit on each of `then`.

    Return (group, count, limit, time_left) for each, in that order, `then`
    left out when it was not counted. A hit refuses once its count is over
    the limit, a read once it has reached it (a lockout). With Redis the
    whole step is one script, one round trip; other caches go through
    django-ratelimit one counter at a time.
    """
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return []
    counters = [
        *[(counter, _HIT) for counter in limits],
        *[(counter, _READ) for counter in peek],
        *[(counter, _THEN) for counter in then],
    ]
    cache = caches[settings.RATELIMIT_USE_CACHE]
    if type(cache).__module__.startswith("django_redis"):
        return _count_in_redis(cache, counters)
    counted = []
    refused = False
    for (group, value, rate), mode in counters:
        if mode == _THEN and refused:
            break
        usage = _usage(request, group=group, value=value, rate=rate, increment=mode != _READ)
        if usage is None:
            continue
        if usage["should_limit"] and not usage["limit"]:
            # The cache could not count (django-ratelimit's answer then): fail closed.
            counted.append((group, 1, 0, 60))
        else:
            counted.append((group, usage["count"], usage["limit"], usage["time_left"]))
        _group, count, limit, _left = counted[-1]
        refused = refused or (count >= limit if mode == _READ else mode == _HIT and count > limit)
    return counted


_HIT, _READ, _THEN = "hit", "read", "then"

# The counting of _count() inside Redis. KEYS are the counters, ARGV holds
# "mode limit seconds-to-live" for each. A counter is opened with its
# window's lifetime, as django-ratelimit's add() and incr() would.
_COUNT_SCRIPT = """
local counts = {}
local refused = false
for i, key in ipairs(KEYS) do
  local mode, limit, ttl = string.match(ARGV[i], "^(%a+) (%d+) (%d+)$")
  limit = tonumber(limit)
  if mode == "then" and refused then
    break
  end
  local count
  if mode == "read" then
    count = tonumber(redis.call("GET", key)) or 0
    refused = refused or count >= limit
  else
    count = redis.call("INCR", key)
    if count == 1 then
      redis.call("EXPIRE", key, ttl)
    end
    refused = refused or (mode == "hit" and count > limit)
  end
  counts[i] = count
end
return counts
"""


@functools.lru_cache(maxsize=64)
def _split_rate(rate: str) -> tuple[int, int]:
    # Rates come from settings: a handful of strings, each parsed once.
    return ratelimit_core._split_rate(rate)


def _count_in_redis(cache, counters):
    # The same keys and windows as django-ratelimit's get_usage (its private
    # helpers, from the pinned 4.1.0), so readers through get_usage agree.
    # _make_cache_key takes the rate already split, as its own _split_rate does.
    now = int(time.time())
    keys, args, windows = [], [], []
    for (group, value, rate), mode in counters:
        limit, period = _split_rate(rate)
        window = ratelimit_core._get_window(value, period)
        key = ratelimit_core._make_cache_key(group, window, (limit, period), value, ALL)
        keys.append(cache.make_key(key))
        args.append(f"{mode} {limit} {period + ratelimit_core.EXPIRATION_FUDGE}")
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
        # Only a code that may go out counts against the number, its range
        # and the site: a client over its limit cannot use theirs up.
        then=[]
        if refusal
        else [
            ("verify.start.number", number, settings.VERIFY_RATE_START_PER_NUMBER),
            ("verify.start.prefix", defences.number_prefix(number), settings.VERIFY_PREFIX_RATE),
            # A cap of 0 is no cap.
            *[cap for cap in caps if not cap[2].startswith("0/")],
        ],
    )
    _refuse(counted)
    if refusal:
        raise refusal


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
    """Count a wrong code for `number`, whatever the session or client."""
    group, value, rate = _wrong_codes(number)
    _usage(request, group=group, value=value, rate=rate, increment=True)


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
    for group, value, rate in _password_limits(request, username):
        _limit, period = ratelimit_core._split_rate(rate)
        window = ratelimit_core._get_window(value, period)
        key = ratelimit_core._make_cache_key(group, window, rate, value, ALL)
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
