"""Rate limits on sending and checking codes, shared by the web pages and the API.

This module is the policy: which counters each step counts, and what a
refusal is called. The counting itself (keys, windows, the cache) is
flows.counters. Counters live in the cache RATELIMIT_USE_CACHE names,
under group names that every entry point uses, so a client cannot get around
a limit by switching between them. Rates come from settings (VERIFY_RATE_*).
A request that one limit refuses is counted by none: refusals use up
nobody's allowance.
"""

from __future__ import annotations

import ipaddress
import unicodedata

from django.conf import settings

from passwordless.clients import client_ip

from . import counters, defences
from .exceptions import RateLimited, SendingPaused, WrongCodeLockout


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


def _count(hits, *, peek=(), then=()) -> list[counters.Count]:
    """Count one hit on each (group, value, rate) of `hits` and `then`, and read those
    of `peek`, unless one of them refuses: then none is counted.

    A hit refuses when its counter already stands at its limit, a read when
    it has reached it (a lockout). All or nothing: a request one limit refuses
    is counted by no other, so that refused requests cannot use up a number's,
    a range's or the site's allowance, nor a client's. Counters are looked at
    in order, `hits`, `peek`, then `then`, up to the first that refuses; the
    Count of each one looked at is returned. A cache that cannot count
    refuses the step (flows.counters).
    """
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return []
    return counters.count(
        [
            *[_counter(*limit) for limit in hits],
            *[_counter(*limit, hit=False) for limit in peek],
            *[_counter(*limit) for limit in then],
        ],
        using=settings.RATELIMIT_USE_CACHE,
    )


def _counter(group: str, value: str, rate: str, *, hit: bool = True) -> counters.Counter:
    return counters.Counter(group, value, counters.parse_rate(rate), hit=hit)


WRONG_CODES = "verify.wrong.number"
SITE_CAPS = "verify.start.site"


def _wrong_codes(number: str) -> tuple[str, str, str]:
    return (WRONG_CODES, number, settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER)


def _refuse(counted: list[counters.Count]) -> None:
    """Raise RateLimited for the first counter that refuses, in order.

    The wrong codes of a number are read, not counted: the number is locked
    once it has had `limit` of them. The site-wide caps pause sending for
    everybody (SendingPaused).
    """
    for count in counted:
        if not count.refuses:
            continue
        group = count.counter.group
        if group == WRONG_CODES:
            raise WrongCodeLockout(retry_after=count.time_left, scope=group)
        if group.startswith(SITE_CAPS):
            defences.sending_paused_alert(group)
            raise SendingPaused(f"site-wide cap {group} reached")
        raise RateLimited(retry_after=count.time_left, scope=group)


def _enforce(limits):
    """Count one hit on each (group, value, rate); raise RateLimited for the first one over."""
    _refuse(_count(limits))


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
    _refuse(_count([], peek=[_wrong_codes(number)]))


def record_wrong_code(request, *, number: str) -> None:
    """Count a wrong code for `number`, whatever the session or client.

    Counted up to the limit, where the number is locked out; checks of a
    locked number are refused before they reach the provider.
    """
    _count([_wrong_codes(number)])


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
    _enforce(_password_limits(request, username))


def password_attempt_uncount(request, *, username: str) -> None:
    """Give back the count of an attempt that was not a wrong password."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    counters.give_back(
        [_counter(*limit) for limit in _password_limits(request, username)],
        using=settings.RATELIMIT_USE_CACHE,
    )


def limit_phone_change(request, *, user_id: int) -> None:
    """Count a new phone number tried on the account page, per account and per client."""
    _enforce(
        [
            ("account.phone.user", str(user_id), settings.ACCOUNT_RATE_PHONE_CHANGE_PER_USER),
            ("account.phone.ip", client_key(request), settings.ACCOUNT_RATE_PHONE_CHANGE_PER_IP),
        ],
    )
