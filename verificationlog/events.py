"""What happened to each verification, for operators: a log line and a VerificationLog row.

Every entry point (web pages, API, commands) reports through
`verification_event`, so the record is the same whichever path a code took.
Nothing here may break a login: a failure to record is itself only logged.
"""

from __future__ import annotations

import ipaddress
import logging
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, router, transaction

from accounts.models import User
from accounts.phone import mask_phone_number
from passwordless import outages
from passwordless.clients import client_ip
from verification.exceptions import (
    IncorrectCode,
    ProviderUnavailable,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
)

from .models import DECOY_DETAIL, Outcome, VerificationLog

__all__ = ["DECOY_DETAIL", "Outcome", "outcome_for_error", "verification_event"]

logger = logging.getLogger(__name__)


def verification_event(
    request,
    *,
    outcome: str,
    purpose: str,
    number: str,
    backend: str = "",
    request_id: str = "",
    user_id: int | None = None,
    price: str | Decimal | None = None,
    currency: str | None = None,
    detail: str = "",
) -> None:
    """Record one event of a verification: a log line and a log row; never raises.

    `request` may be None (a management command): the row then has no IP.
    """
    number = str(number or "")  # a PhoneNumber from a model field is welcome too
    ip = _client_ip_or_none(request)
    try:
        logger.info(
            "verification event=%s purpose=%s number=%s backend=%s ip=%s user_id=%s%s",
            outcome,
            purpose,
            mask_phone_number(number),
            backend or "-",
            ip or "-",
            user_id if user_id is not None else "-",
            f" detail={detail}" if detail else "",
        )
    except Exception:  # a record must never break the flow it records
        logger.exception("could not record a verification event")
    row = VerificationLog(
        outcome=outcome,
        purpose=purpose,
        number=number[:32],
        user_id=user_id,
        backend=(backend or "")[:50],
        request_id=(request_id or "")[:64],
        ip=ip,
        price=_decimal_or_none(price),
        currency=(currency or "")[:3].upper(),
        detail=(detail or "")[:100],
    )
    try:
        _save(row)
    except Exception as exc:
        # The database down is one incident, said once a minute
        # (passwordless.outages), not once per request.
        if outages.report(exc) is None:
            # Only the class: some databases quote the failing row in the
            # message, and the row holds the full phone number.
            logger.error(
                "could not write the verification log row event=%s error=%s",
                outcome,
                type(exc).__name__,
            )


def outcome_for_error(exc: VerificationError) -> Outcome:
    """Name the log outcome of a provider refusal."""
    if isinstance(exc, IncorrectCode):
        return Outcome.WRONG_CODE
    if isinstance(exc, TooManyAttempts):
        return Outcome.TOO_MANY_ATTEMPTS
    if isinstance(exc, VerificationEnded):
        return Outcome.EXPIRED
    if isinstance(exc, ProviderUnavailable):
        return Outcome.UPSTREAM_ERROR
    return Outcome.REFUSED


def _save(row: VerificationLog) -> None:
    """Save the row, never leaving a caller's transaction broken.

    On the request path (autocommit) the INSERT is its own transaction. Inside
    a caller's atomic block it goes in a savepoint, so that a failure rolls
    back the insert only; there, a user id is checked first, because the
    foreign key is enforced only at the caller's commit on most databases.
    """
    using = router.db_for_write(VerificationLog, instance=row)
    if transaction.get_connection(using).in_atomic_block:
        # On the database the row goes to, where the foreign key is checked.
        if (
            row.user_id is not None
            and not User._default_manager.using(using).filter(pk=row.user_id).exists()
        ):
            row.user_id = None
        with transaction.atomic(using=using):
            row.save(using=using)
        return
    try:
        row.save(using=using)
    except IntegrityError:
        if row.user_id is None:
            raise
        # The user was deleted since the flow began: keep the event without them.
        row.user_id = None
        row.save(using=using)


def _client_ip_or_none(request) -> str | None:
    """Return the client's address when it is a valid IP ("unknown" and the like are not)."""
    if request is None:
        return None
    try:
        return str(ipaddress.ip_address(client_ip(request)))
    except (ValueError, AttributeError):
        return None


def _decimal_or_none(value: str | Decimal | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() else None
