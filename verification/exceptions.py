"""The outcomes of a verification call, other than success.

Backends translate their provider's answers into these; services and views
never see a provider's own errors. Each carries `status`, the Verify v1 status
code (Vonage's numbering) that the JSON API reports whichever backend runs.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Base class: the verification call did not succeed."""

    status = "5"

    def __init__(self, message: str = "", *, request_id: str | None = None):
        super().__init__(message or self.__class__.__name__)
        self.request_id = request_id


class IncorrectCode(VerificationError):
    """Wrong code; the request is still alive and `attempts_left` tries remain."""

    status = "16"

    def __init__(self, message: str = "", *, attempts_left: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.attempts_left = attempts_left


class VerificationEnded(VerificationError):
    """The request is over: the person must start again."""

    status = "6"


class VerificationExpired(VerificationEnded):
    """The code expired, was already used, or the request is unknown."""

    status = "6"


class TooManyAttempts(VerificationEnded):
    """Wrong code too many times: the provider terminated the request."""

    status = "17"


class ConcurrentVerification(VerificationError):
    """A request to the same number is already live; `request_id` names it when known."""

    status = "10"


class InvalidNumber(VerificationError):
    """The provider cannot send to this number (invalid, unroutable, blocked, unsupported)."""

    status = "3"


class Throttled(VerificationError):
    """The provider refuses the call for now because of its own rate limits."""

    status = "1"


class ActionNotAllowed(VerificationError):
    """Cancel or next event is not possible now (too early, or no events left)."""

    status = "19"


class ProviderUnavailable(VerificationError):
    """Timeout, network failure, server error, bad credentials or account problem."""

    status = "5"
