"""The API's verification flows: request, check, cancel, next.

An adapter over the verification process (flows/process.py) for clients
without a session: the signed `request_id` token names the pending
verification (tokens.py, TokenStorage), and every event goes through the
process with Purpose.API. The limits, the stand-in for numbers that cannot
log in and the live request a number shares are the process's, as for the
pages: a number has one code on its way whichever entry point asked, and the
API must not tell who has an account. A correct code logs nobody in: the API
answers like the proxy it replaces, and the app decides what follows.
"""

from __future__ import annotations

import contextlib
import logging

from django.http import HttpRequest

from verification import CheckResult
from verificationlog.events import Outcome, verification_event
from verificationlog.models import Purpose

from ..exceptions import CodeAlreadySent
from ..process import TokenStorage, VerificationProcess
from .errors import NumberMismatch
from .tokens import InvalidToken, token_resolve

logger = logging.getLogger(__name__)


def api_verification_request(request: HttpRequest, *, number: str) -> str:
    """Send a code to `number` and return the token naming the verification.

    When the number already has a live login request started here (the same
    app asking twice, or the site), nothing is sent: the token names that
    request, whose code is on its way.
    """
    storage = TokenStorage()
    # An adopted request is no refusal here: the token names it all the same.
    with contextlib.suppress(CodeAlreadySent):
        VerificationProcess(request, storage).start(number=number, purpose=Purpose.API)
    return storage.token


def api_verification_check(
    request: HttpRequest, *, token: str, code: str, number: str | None = None
) -> CheckResult:
    """Check `code` for the verification `token` names; return the result when right."""
    process = _process(request, token, number)
    pending = process.check(code)
    process.done(pending)
    return process.result or CheckResult(request_id=pending.request_id)


def api_verification_cancel(request: HttpRequest, *, token: str, number: str | None = None) -> None:
    """Stop the verification `token` names, upstream too."""
    _process(request, token, number).cancel()


def api_verification_next(request: HttpRequest, *, token: str, number: str | None = None) -> None:
    """Move the verification `token` names to its next channel (a voice call).

    As on the pages: a call waits VERIFY_RESEND_COOLDOWN after the last send,
    and sends the code again, so it counts as a start.
    """
    _process(request, token, number).call()


def _process(request: HttpRequest, token: str, number: str | None) -> VerificationProcess:
    """Return the process of the verification `token` names; refuse it for another `number`."""
    try:
        verification = token_resolve(token)
    except InvalidToken as exc:
        # A log line, not a verification event: anyone can send forged tokens
        # without limit, and each event is a database row.
        logger.info("api request_id refused: %s", exc.reason)
        raise
    process = VerificationProcess(request, TokenStorage(verification))
    if number and number != verification.number:
        verification_event(
            request,
            outcome=Outcome.REFUSED,
            purpose=Purpose.API,
            number=verification.number,
            request_id="" if verification.decoy else verification.request_id,
            backend="" if verification.decoy else process.provider.name,
            detail="number mismatch",
        )
        raise NumberMismatch
    return process
