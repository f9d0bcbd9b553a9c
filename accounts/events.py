"""What happened to each verification, for operators: a log line and a VerificationLog row.

Every entry point (web pages, API, commands) reports through
`verification_event`, so the record is the same whichever path a code took.
Nothing here may break a login: a failure to record is itself only logged.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from decimal import Decimal, InvalidOperation

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction

from .limits import client_ip
from .models import DECOY_DETAIL, Outcome, User, VerificationLog
from .phone import mask_phone_number
from .verification.exceptions import (
    IncorrectCode,
    ProviderUnavailable,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
)

__all__ = ["DECOY_DETAIL", "Outcome", "outcome_for_error", "verification_event"]

logger = logging.getLogger("accounts.events")


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
        _insert(row)
    except Exception as exc:
        # Only the class: some databases quote the failing row in the message,
        # and the row holds the full phone number.
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


def _insert(row: VerificationLog) -> None:
    """Write the row in one statement, never leaving a caller's transaction broken.

    On the request path (autocommit) the INSERT is its own transaction. Inside
    a caller's atomic block it goes in a savepoint, so that a failure rolls
    back the insert only; there, a user id is checked first, because the
    foreign key is enforced only at the caller's commit on most databases.
    """
    # The connection itself, not django.db.connection: each attribute read
    # through that proxy is a thread-local lookup, and every field below
    # reads it.
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:
        if row.user_id is not None and not User.objects.filter(pk=row.user_id).exists():
            row.user_id = None
        with transaction.atomic():
            _execute_insert(connection, row)
        return
    try:
        _execute_insert(connection, row)
    except IntegrityError:
        if row.user_id is None:
            raise
        # The user was deleted since the flow began: keep the event without them.
        row.user_id = None
        _execute_insert(connection, row)


def _execute_insert(connection, row: VerificationLog) -> None:
    # Every login writes two rows: the statement is written out, because
    # save() spends more CPU building it than sending it (about 0.15 ms a
    # row, measured in process). The values go through each field as save() would.
    fields, sql = _insert_statement(connection.vendor)
    values = [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


@functools.cache
def _insert_statement(vendor: str):
    """Return the log's fields and their INSERT, once per database vendor (quoting differs)."""
    fields = [field for field in VerificationLog._meta.concrete_fields if not field.primary_key]
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 names from the model
        quote(VerificationLog._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    return fields, sql


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
