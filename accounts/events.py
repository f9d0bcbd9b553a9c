"""What happened to each verification, for operators: one log line per event.

Every entry point (web pages, API, commands) reports through
`verification_event`, so the record is the same whichever path a code took.
Nothing here may break a login: a failure to record is itself only logged.
"""

from __future__ import annotations

import logging

from .limits import client_ip
from .phone import mask_phone_number

logger = logging.getLogger("accounts.events")


class Outcome:
    STARTED = "started"
    SUCCEEDED = "succeeded"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    CANCELLED = "cancelled"
    RATE_LIMITED = "rate_limited"
    REFUSED = "refused"
    UPSTREAM_ERROR = "upstream_error"


def verification_event(
    request,
    *,
    outcome: str,
    purpose: str,
    number: str,
    backend: str = "",
    request_id: str = "",
    user_id: int | None = None,
    price: str | None = None,
    currency: str | None = None,
    detail: str = "",
) -> None:
    """Record one event of a verification: never raises."""
    try:
        logger.info(
            "verification event=%s purpose=%s number=%s backend=%s ip=%s user_id=%s%s",
            outcome,
            purpose,
            mask_phone_number(number),
            backend or "-",
            client_ip(request) if request is not None else "-",
            user_id if user_id is not None else "-",
            f" detail={detail}" if detail else "",
        )
    except Exception:  # a record must never break the flow it records
        logger.exception("could not record a verification event")
