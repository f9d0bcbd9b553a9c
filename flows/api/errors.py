"""Every refusal of the API as (HTTP status, Verify v1 status, error text), in one place.

The v1 numbering (see ../shared/VONAGE.md) is what clients written for the
Nexmo Verify proxy read, so it is the same whichever backend runs. The text is
always ours: a provider's own error text never reaches a client.
"""

from __future__ import annotations

from passwordless import outages
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    Throttled,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
)

from ..exceptions import RateLimited, WrongCodeLockout
from .tokens import InvalidToken

# The provider's rate is per second (30 requests/s per key): a short wait does.
UPSTREAM_THROTTLE_RETRY_AFTER = 1

ERROR_TEXTS = {
    "missing": "Missing mandatory field: %(field)s",
    "invalid": "Invalid value for param: %(field)s",
    "body": (
        "Send a JSON object (Content-Type: application/json) "
        "or a form-encoded body (application/x-www-form-urlencoded)"
    ),
    "too_large": "The request body is too large",
    "method": "Method not allowed: use %(allowed)s",
    "not_found": "Not found: the endpoints are described at /api/openapi.json",
    "cross_origin": (
        "Cross-origin request refused: this origin may not call the API "
        "(the site lists the origins it serves in API_CORS_ORIGINS)"
    ),
    "rate_limited": "Throttled: too many attempts, retry after %(wait)s seconds",
    "locked": "Too many wrong codes for this number: retry after %(wait)s seconds",
    "throttled": "Throttled",
    "unavailable": "The verification service is temporarily unavailable: try again later",
    "internal": "Internal error",
    "invalid_token": (
        "The request_id is unknown, expired, already verified or cancelled: request a new code"
    ),
    "number_mismatch": "The request_id was issued for another number",
    "concurrent": "Concurrent verifications to the same number are not allowed",
    "incorrect_code": "The code provided does not match the expected value",
    "too_many_attempts": "The wrong code was provided too many times. Request terminated",
    "not_allowed": "This action is not possible now for this request",
}

# What InvalidNumber may say, by the v1 status the backend gives it.
INVALID_NUMBER_TEXTS = {
    "3": "Invalid value for param: number",
    "7": "The number is blocked for verification",
    "15": "The destination number is not in a supported network",
    "29": "Non-permitted destination",
}


class ApiError(Exception):
    """A refusal, ready to be sent as `{"status": …, "error_text": …}`."""

    def __init__(
        self,
        status: str,
        error_text: str,
        *,
        http_status: int = 400,
        retry_after: int | None = None,
    ):
        super().__init__(f"{http_status} status={status} {error_text}")
        self.status = status
        self.error_text = error_text
        self.http_status = http_status
        self.retry_after = retry_after


class NumberMismatch(Exception):
    """The client named another number than the one its request_id was issued for."""


def missing_field(field: str) -> ApiError:
    return ApiError("2", ERROR_TEXTS["missing"] % {"field": field})


def invalid_field(field: str) -> ApiError:
    return ApiError("3", ERROR_TEXTS["invalid"] % {"field": field})


def bad_body(key: str = "body") -> ApiError:
    return ApiError("3", ERROR_TEXTS[key])


def method_not_allowed(allowed: str) -> ApiError:
    return ApiError("3", ERROR_TEXTS["method"] % {"allowed": allowed}, http_status=405)


def not_found() -> ApiError:
    return ApiError("3", ERROR_TEXTS["not_found"], http_status=404)


def cross_origin() -> ApiError:
    return ApiError("3", ERROR_TEXTS["cross_origin"], http_status=403)


def internal_error() -> ApiError:
    return ApiError("5", ERROR_TEXTS["internal"], http_status=500)


def unavailable() -> ApiError:
    """The answer when the site's database or cache cannot be reached: wait and retry."""
    return ApiError(
        "5", ERROR_TEXTS["unavailable"], http_status=503, retry_after=outages.RETRY_AFTER
    )


def api_error_for(exc: Exception) -> ApiError | None:
    """Translate a flow's or provider's refusal; None when `exc` is not one.

    An outage of the site's database or cache is one too (status "5", 503),
    and is reported to the log once per incident (passwordless.outages).
    """
    if isinstance(exc, ApiError):
        return exc
    if outages.report(exc) is not None:
        return unavailable()
    if isinstance(exc, RateLimited):
        key = "locked" if isinstance(exc, WrongCodeLockout) else "rate_limited"
        text = ERROR_TEXTS[key] % {"wait": exc.retry_after}
        return ApiError("1", text, http_status=429, retry_after=exc.retry_after)
    if isinstance(exc, InvalidToken):
        return ApiError("6", ERROR_TEXTS["invalid_token"])
    if isinstance(exc, NumberMismatch):
        return ApiError("6", ERROR_TEXTS["number_mismatch"])
    if isinstance(exc, VerificationError):
        return _provider_error(exc)
    return None


def _provider_error(exc: VerificationError) -> ApiError:
    if isinstance(exc, Throttled):
        retry_after = getattr(exc, "retry_after", None) or UPSTREAM_THROTTLE_RETRY_AFTER
        return ApiError("1", ERROR_TEXTS["throttled"], http_status=429, retry_after=retry_after)
    if isinstance(exc, InvalidNumber):
        # The one outcome whose v1 status varies (invalid, blocked, unsupported
        # network, demo account); anything unexpected reads as "invalid".
        status = exc.status if exc.status in INVALID_NUMBER_TEXTS else "3"
        return ApiError(status, INVALID_NUMBER_TEXTS[status])
    if isinstance(exc, IncorrectCode):
        # No attempts count in the text: decoys must read exactly like real
        # requests whichever backend runs, and not every provider reports it.
        return ApiError("16", ERROR_TEXTS["incorrect_code"])
    if isinstance(exc, TooManyAttempts):
        return ApiError("17", ERROR_TEXTS["too_many_attempts"])
    if isinstance(exc, VerificationEnded):
        return ApiError("6", ERROR_TEXTS["invalid_token"])
    if isinstance(exc, ConcurrentVerification):
        return ApiError("10", ERROR_TEXTS["concurrent"])
    if isinstance(exc, ActionNotAllowed):
        return ApiError("19", ERROR_TEXTS["not_allowed"])
    # ProviderUnavailable, and any outcome a backend adds later: the client
    # can only wait. Account problems (credentials, balance) are not its business.
    return ApiError("5", ERROR_TEXTS["unavailable"], http_status=503)
