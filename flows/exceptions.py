"""Why a flow step was refused before or after the provider was asked.

The provider's own outcomes live in `verification.exceptions`; these
are the flow's. Views turn both into messages.
"""

from __future__ import annotations

from verification.exceptions import InvalidNumber, ProviderUnavailable, VerificationEnded


class FlowError(Exception):
    """Base class for refusals of the login and verification flows."""


class RateLimited(FlowError):
    """Too many attempts from this client, session or number: nothing was sent."""

    def __init__(self, *, retry_after: int, scope: str):
        super().__init__(f"rate limited ({scope}), retry after {retry_after}s")
        self.retry_after = max(1, int(retry_after))
        self.scope = scope


class WrongCodeLockout(RateLimited):
    """Too many wrong codes for this number: even a correct code is refused for now."""


class ResendTooSoon(RateLimited):
    """A new code or a call for the pending verification came too soon after the last send."""


class NoPendingVerification(FlowError):
    """There is nothing to check: the session holds no live verification."""


class CodeAlreadySent(FlowError):
    """The number already has a live request from this session: keep using it."""

    def __init__(self, pending):
        super().__init__("a code is already on its way")
        self.pending = pending


class VerificationInProgress(FlowError):
    """A code for another step is on its way to this number: finish or cancel that first."""

    def __init__(self, pending):
        super().__init__("another verification is in progress for this number")
        self.pending = pending


class SecondFactorRequired(FlowError):
    """The account chose password + code: a code alone does not log it in."""


class SecondFactorUnavailable(FlowError):
    """The account asks for a code but has no phone number to send it to."""


class PhoneNumberUnavailable(FlowError):
    """The number cannot be used for this account (taken, the same, or missing)."""


class PasswordRequired(FlowError):
    """The change needs a usable password on the account first."""


class NumberNotAllowed(InvalidNumber):
    """A valid number this site does not send codes to (country or number type)."""

    def __init__(self, reason: str):
        super().__init__(f"number not allowed: {reason}")
        # "country" or "type": the person is told which.
        self.reason = reason


class SendingPaused(ProviderUnavailable):
    """The site-wide caps on codes sent are reached: no new code goes out for now."""

    status = "9"


class ResendFailed(VerificationEnded):
    """The old code was cancelled for a new one, and the new one could not be sent."""
