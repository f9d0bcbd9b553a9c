"""Defences against SMS pumping: which numbers may get a code, and how many codes go out.

Every code costs money, and attackers make sites send codes to premium-rate or
foreign numbers they are paid for. Per-IP limits alone do not stop a botnet,
so a send must also pass a country allowlist, a refusal of costly number
types, a limit per number range (prefix), and site-wide caps.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.phone import phone_number_facts
from verificationlog.models import DECOY_DETAIL, Outcome, VerificationLog

from .exceptions import NumberNotAllowed

logger = logging.getLogger(__name__)

NUMBER_TYPES = {
    "premium_rate": phonenumbers.PhoneNumberType.PREMIUM_RATE,
    "shared_cost": phonenumbers.PhoneNumberType.SHARED_COST,
    "toll_free": phonenumbers.PhoneNumberType.TOLL_FREE,
    "uan": phonenumbers.PhoneNumberType.UAN,
    "pager": phonenumbers.PhoneNumberType.PAGER,
    "voicemail": phonenumbers.PhoneNumberType.VOICEMAIL,
    "personal_number": phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    "voip": phonenumbers.PhoneNumberType.VOIP,
    "fixed_line": phonenumbers.PhoneNumberType.FIXED_LINE,
}


def blocked_number_types() -> set[int]:
    names = set(settings.VERIFY_BLOCKED_NUMBER_TYPES)
    if settings.VERIFY_BLOCK_VOIP:
        names.add("voip")
    return {NUMBER_TYPES[name] for name in names}


def number_refusal(number: str) -> NumberNotAllowed | None:
    """Return why `number` may not get a code (outside the allowed countries or types), or None."""
    region, _, _, number_type = phone_number_facts(number)
    allowed = settings.VERIFY_ALLOWED_COUNTRIES
    if allowed and region not in allowed:
        return NumberNotAllowed("country")
    if number_type in blocked_number_types():
        return NumberNotAllowed("type")
    return None


def number_prefix(number: str) -> str:
    """Return the number's range: country calling code and the first national digits."""
    _, country_code, national, _ = phone_number_facts(number)
    return f"+{country_code}{national[: settings.VERIFY_PREFIX_DIGITS]}"


def sending_paused_alert(scope: str) -> None:
    """Log, once per minute and scope, that the site-wide cap stopped new codes."""
    if cache.add(f"defences:cap-alert:{scope}", 1, 60):
        logger.error(
            "verification sending paused: site-wide cap %s reached; new codes are refused "
            "until the window passes (VERIFY_MAX_SENDS_PER_HOUR / VERIFY_MAX_SENDS_PER_DAY)",
            scope,
        )


def conversion_last_hour() -> dict:
    """Return the last hour's verifications started and checked right, and whether that is low.

    Conversion (succeeded / started) is what Vonage watches to block networks
    that look pumped: a sudden fall means codes go to numbers nobody reads.
    """
    since = timezone.now() - timedelta(hours=1)
    rows = VerificationLog.objects.filter(created_at__gte=since).exclude(detail=DECOY_DETAIL)
    started = rows.filter(outcome=Outcome.STARTED).count()
    succeeded = rows.filter(outcome=Outcome.SUCCEEDED).count()
    rate = succeeded / started if started else None
    low = (
        started >= settings.VERIFY_CONVERSION_MIN_VOLUME
        and rate is not None
        and rate < settings.VERIFY_MIN_CONVERSION
    )
    return {"started": started, "succeeded": succeeded, "rate": rate, "low": low}


class _Watch:
    """When this process may next look at conversion: most starts skip even the cache."""

    SECONDS = 60
    next_look = 0.0


def conversion_watch() -> None:
    """Log a WARNING, once per hour, when conversion over the last hour is low.

    Looked at no more than once a minute by the whole site (a key in the
    shared cache), and asked for no more than once a minute by each process,
    so the watch adds nothing to most requests.
    """
    now = time.monotonic()
    if now < _Watch.next_look:
        return
    _Watch.next_look = now + _Watch.SECONDS
    if not cache.add("defences:conversion-looked", 1, _Watch.SECONDS):
        return
    try:
        # A savepoint, like the log's own write: a failed read must neither
        # break the send nor poison a surrounding transaction.
        with transaction.atomic():
            conversion = conversion_last_hour()
    except DatabaseError:
        logger.exception("could not read the verification log for the conversion watch")
        return
    if conversion["low"] and cache.add("defences:conversion-warned", 1, 3600):
        logger.warning(
            "verification conversion low: %d of %d started in the last hour checked right "
            "(%.0f%% < VERIFY_MIN_CONVERSION %.0f%%); look for SMS pumping",
            conversion["succeeded"],
            conversion["started"],
            conversion["rate"] * 100,
            settings.VERIFY_MIN_CONVERSION * 100,
        )
