"""The API's verification flows: request, check, cancel, next.

The counterpart of `accounts.services` for clients without a session: the
signed `request_id` token names the pending verification (tokens.py). The
limits are the web flow's own functions and counters, and every event goes
through `verification_event` with Purpose.API. A correct code logs nobody in:
the API answers like the proxy it replaces, and the app decides what follows.

With PASSWORDLESS_SIGNUP off, a number that belongs to no active user gets the
very answers a registered one gets, but nothing is sent and no code is ever
right (a decoy, run through the web flow's stand-in backend with the
provider's rules), as on the web: the API must not tell who has an account.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest

from .. import limits
from ..events import Outcome, outcome_for_error, verification_event
from ..exceptions import RateLimited
from ..live_requests import live_request_end, live_request_sent, step_digest
from ..models import Purpose
from ..services import (
    limit_send,
    number_holder,
    request_start,
    resend_wait,
    upstream_latency,
    verification_backend,
)
from ..verification import BaseVerificationBackend, CheckResult, get_backend
from ..verification.exceptions import (
    IncorrectCode,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
)
from .errors import NumberMismatch
from .tokens import (
    ApiVerification,
    InvalidToken,
    token_issue,
    token_record_sent,
    token_resolve,
    token_revoke,
)

logger = logging.getLogger(__name__)


def api_verification_request(request: HttpRequest, *, number: str) -> str:
    """Send a code to `number` and return the token naming the verification.

    When the number already has a live login request started here (the same
    app asking twice, or the site), nothing is sent: the token names that
    request, whose code is on its way.
    """
    user_id, decoy = number_holder(Purpose.API, number)
    event = {"purpose": Purpose.API, "number": number, "user_id": user_id}
    live, _adopted = request_start(
        request,
        number=number,
        decoy=decoy,
        step=step_digest(purpose=Purpose.API, user_id=user_id),
        event=event,
    )
    return token_issue(
        request_id=live.request_id,
        number=number,
        decoy=decoy,
        started_at=live.started_at,
        sent_at=live.sent_at,
    )


def api_verification_check(
    request: HttpRequest, *, token: str, code: str, number: str | None = None
) -> CheckResult:
    """Check `code` for the verification `token` names; return the result when right."""
    backend = get_backend()
    verification = _resolve(request, backend, token, number)
    try:
        limits.limit_check(request, session_key=verification.limit_key, number=verification.number)
    except RateLimited:
        _event(request, backend, verification, Outcome.RATE_LIMITED)
        raise
    try:
        result = upstream_latency.run(
            "check",
            verification_backend(decoy=verification.decoy).check,
            verification.request_id,
            code,
            decoy=verification.decoy,
        )
    except VerificationError as exc:
        if isinstance(exc, (IncorrectCode, TooManyAttempts)):
            limits.record_wrong_code(request, number=verification.number)
        _refused(request, backend, verification, exc, detail=exc.status)
        raise
    token_revoke(verification)
    _live_end(verification)
    _event(
        request,
        backend,
        verification,
        Outcome.SUCCEEDED,
        price=result.price,
        currency=result.currency,
    )
    return result


def api_verification_cancel(request: HttpRequest, *, token: str, number: str | None = None) -> None:
    """Stop the verification `token` names, upstream too."""
    backend = get_backend()
    verification = _resolve(request, backend, token, number)
    try:
        verification_backend(decoy=verification.decoy).cancel(verification.request_id)
    except VerificationError as exc:
        _refused(request, backend, verification, exc, detail=f"cancel {exc.status}")
        raise
    token_revoke(verification)
    _live_end(verification)
    _event(request, backend, verification, Outcome.CANCELLED)


def api_verification_next(request: HttpRequest, *, token: str, number: str | None = None) -> None:
    """Move the verification `token` names to its next channel (a voice call)."""
    backend = get_backend()
    verification = _resolve(request, backend, token, number)
    # As on the web: a call waits VERIFY_RESEND_COOLDOWN after the last send,
    # and sends the code again, so it counts as a start.
    wait = resend_wait(verification.sent_at)
    if wait:
        _event(
            request, backend, verification, Outcome.RATE_LIMITED, detail="verify.resend.cooldown"
        )
        raise RateLimited(retry_after=wait, scope="verify.resend.cooldown")
    limit_send(request, {"purpose": Purpose.API, "number": verification.number})
    try:
        verification_backend(decoy=verification.decoy).trigger_next(verification.request_id)
    except VerificationError as exc:
        _refused(request, backend, verification, exc, detail=f"next {exc.status}")
        raise
    verification = token_record_sent(verification)
    live_request_sent(
        verification.number,
        decoy=verification.decoy,
        request_id=verification.request_id,
        sent_at=verification.sent_at,
    )
    # Logged like the web's call: a code sent again.
    _event(request, backend, verification, Outcome.STARTED, detail="call")


def _resolve(
    request: HttpRequest, backend: BaseVerificationBackend, token: str, number: str | None
) -> ApiVerification:
    """Return the verification `token` names; refuse it for another `number`."""
    try:
        verification = token_resolve(token)
    except InvalidToken as exc:
        # A log line, not a verification event: anyone can send forged tokens
        # without limit, and each event is a database row.
        logger.info("api request_id refused: %s", exc.reason)
        raise
    if number and number != verification.number:
        _event(request, backend, verification, Outcome.REFUSED, detail="number mismatch")
        raise NumberMismatch
    return verification


def _refused(
    request: HttpRequest,
    backend: BaseVerificationBackend,
    verification: ApiVerification,
    exc: VerificationError,
    *,
    detail: str,
) -> None:
    """Record the provider's refusal; revoke the token once the request is over.

    A wrong code, a refused action or an unreachable provider keeps the token
    for another try.
    """
    _event(request, backend, verification, outcome_for_error(exc), detail=detail)
    if isinstance(exc, VerificationEnded):
        token_revoke(verification)
        _live_end(verification)


def _live_end(verification: ApiVerification) -> None:
    live_request_end(
        verification.number, decoy=verification.decoy, request_id=verification.request_id
    )


def _event(
    request: HttpRequest,
    backend: BaseVerificationBackend,
    verification: ApiVerification,
    outcome: str,
    **extra,
) -> None:
    verification_event(
        request,
        outcome=outcome,
        purpose=Purpose.API,
        number=verification.number,
        request_id="" if verification.decoy else verification.request_id,
        backend="" if verification.decoy else backend.name,
        **extra,
    )
