"""What a person is told when a step of the pages is refused: one table.

The pages' counterpart of `api.errors.api_error_for`: each step (start,
check, finish, resend, call…) has rows from exception to `Refusal`: the
message (a key of MESSAGES), its level, and where the person goes next, a
page by URL name or AGAIN, the page they were on (a form shown again, with
the message on the field it names when the form has it). The first row whose
class matches wins. Over a limit the answer is the 429 page, whatever the
step. An exception no row names is no refusal: it propagates (a failure of
the database or the cache is answered by the site's 503 page).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages

from accounts.phone import mask_phone_number
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    Throttled,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
    VerificationExpired,
)

from .exceptions import (
    CodeAlreadySent,
    FlowError,
    NoPendingVerification,
    NumberNotAllowed,
    PasswordRequired,
    PhoneNumberUnavailable,
    ResendFailed,
    ResendTooSoon,
    SecondFactorRequired,
    SecondFactorUnavailable,
    VerificationInProgress,
)

# What a step of the pages may be refused with.
REFUSED = (FlowError, VerificationError)

# Everything a person reads about a failure, in one place.
MESSAGES = {
    "already_sent": "We already sent a code to %(number)s a moment ago: type it here.",
    "in_progress": (
        "A code for another step is already on its way to %(number)s. Use it for that step, "
        "or cancel it below, then start again."
    ),
    "concurrent": (
        "A code was sent to this number a moment ago. Wait a few minutes, then try again."
    ),
    "invalid_number": (
        "We cannot send a code to this number. Check it, or use another phone number."
    ),
    "country_not_allowed": (
        "We do not send codes to phone numbers in this country. Use another phone number."
    ),
    "type_not_allowed": (
        "We cannot send codes to premium-rate, toll-free, shared-cost or similar numbers. "
        "Use a mobile phone number."
    ),
    "resend_wait": "You can ask for a new code or a call in %(wait)s.",
    "resend_failed": (
        "We could not send a new code, and the previous one no longer works. "
        "Start again in a moment."
    ),
    "throttled": "Too many attempts. Try again later.",
    "unavailable": (
        "The service is temporarily unavailable. Nothing was lost: try again in a moment."
    ),
    "incorrect_code": "That code is not right. %(attempts)s",
    "expired": "That code has expired or was already used. Start again to get a new code.",
    "too_many_attempts": "Wrong code too many times. Start again to get a new code.",
    "no_pending": "Enter your phone number to get a code.",
    "rate_limited": "Too many attempts. Wait %(wait)s, then try again.",
    "locked": (
        "Too many wrong codes for this phone number. No code is accepted for it for "
        "%(wait)s; try again after that."
    ),
    "resent": "A new code is on its way to %(number)s.",
    "resend_too_soon": (
        "A new code cannot be sent now. Use the code already sent, or wait until it "
        "expires and start again."
    ),
    "call": "We are calling %(number)s to read you the code.",
    "call_not_possible": "A call is not possible now. Use the code we sent, or start again.",
    "cancelled": "Cancelled. The code we sent will not work any more.",
    "cancelled_here": (
        "Cancelled here: the code already sent will not be accepted on this page. "
        "Our provider could not stop the message in time, so it may still arrive."
    ),
    "logged_in": "You are logged in.",
    "logged_out": "You have been logged out.",
    "use_password": (
        "Your account is protected by a password and a code. Log in with your password first."
    ),
    "second_factor_unavailable": (
        "Your account asks for a code, but has no phone number to send it to. "
        "Contact support to get back in."
    ),
    "phone_saved": "Your phone number is now %(number)s.",
    "phone_taken": "This number cannot be used for your account. Choose another one.",
    "new_phone_code": "Now enter the code we sent to your new number, %(number)s.",
    "step_up_sent": "To confirm it is you, enter the code we sent to %(number)s.",
    "second_factor_on": "Done: from now on you log in with your password and a code.",
    "second_factor_off": "The second factor is off: your password alone logs you in.",
    "second_factor_needs_phone": "Add a phone number first.",
    "second_factor_needs_password": "Set a password first: the second factor comes after it.",
    "phone_removed": "Your phone number is removed and the second factor is off.",
    "no_phone": "Your account has no phone number.",
    "password_changed": "Your password is saved.",
}


# Where a refused person goes: back to the page they were on.
AGAIN = None


@dataclass(frozen=True)
class Refusal:
    """What a refused person reads, and where they go next."""

    # A key of MESSAGES, or a function of the exception returning one.
    message: str | Callable[[Exception], str]
    to: str | None = AGAIN
    level: int = messages.ERROR
    # The form field the message belongs to, on a page whose form has it.
    field: str = ""

    def text(self, exc: Exception) -> str:
        key = self.message(exc) if callable(self.message) else self.message
        return MESSAGES[key] % _params(exc)


def _not_allowed(exc: NumberNotAllowed) -> str:
    return f"{exc.reason}_not_allowed"


# Starting a verification: the login form, the password's second factor,
# the account page's steps. What goes wrong shows on the page, as typed.
_START = (
    (SecondFactorUnavailable, Refusal("second_factor_unavailable")),
    (PhoneNumberUnavailable, Refusal("phone_taken", field="number")),
    (NumberNotAllowed, Refusal(_not_allowed, field="number")),
    (InvalidNumber, Refusal("invalid_number", field="number")),
    (ConcurrentVerification, Refusal("concurrent")),
    (Throttled, Refusal("throttled")),
    (VerificationError, Refusal("unavailable")),
)

# A code to send or a call to make for the pending verification.
_SEND_AGAIN = (
    (NoPendingVerification, Refusal("no_pending", "flows:login", messages.INFO)),
    (ResendTooSoon, Refusal("resend_wait", "flows:verify")),
    (ResendFailed, Refusal("resend_failed", "flows:login")),
    (VerificationEnded, Refusal("expired", "flows:login")),
    (NumberNotAllowed, Refusal(_not_allowed, "flows:login")),
    (InvalidNumber, Refusal("invalid_number", "flows:login")),
    (ConcurrentVerification, Refusal("concurrent", "flows:verify")),
    (Throttled, Refusal("throttled", "flows:verify")),
)

REFUSALS = {
    "start": _START,
    # A fresh code to the current phone, asked from the account page.
    "step_up": (
        (PhoneNumberUnavailable, Refusal("no_phone", "accounts:account")),
        *_START,
    ),
    # The code page, without a live verification.
    "pending": (
        (NoPendingVerification, Refusal("no_pending", "flows:login", messages.INFO)),
        (VerificationExpired, Refusal("expired", "flows:login")),
    ),
    "check": (
        (NoPendingVerification, Refusal("no_pending", "flows:login", messages.INFO)),
        (IncorrectCode, Refusal("incorrect_code", "flows:verify")),
        (TooManyAttempts, Refusal("too_many_attempts", "flows:login")),
        (VerificationExpired, Refusal("expired", "flows:login")),
        # Nothing lost: the pending verification stays for another try.
        (VerificationError, Refusal("unavailable", "flows:verify")),
    ),
    # What a right code was for (a login, a new phone, a step-up).
    "finish": (
        (SecondFactorRequired, Refusal("use_password", "flows:password_login")),
        (PhoneNumberUnavailable, Refusal("phone_taken", "accounts:account")),
        (NoPendingVerification, Refusal("expired", "flows:login")),
        (VerificationError, Refusal("unavailable", "accounts:account")),
    ),
    "resend": (
        *_SEND_AGAIN[:2],
        (ActionNotAllowed, Refusal("resend_too_soon", "flows:verify")),
        *_SEND_AGAIN[2:],
        (VerificationError, Refusal("unavailable", "flows:verify")),
    ),
    "call": (
        *_SEND_AGAIN[:2],
        (ActionNotAllowed, Refusal("call_not_possible", "flows:verify")),
        *_SEND_AGAIN[2:],
        (VerificationError, Refusal("unavailable", "flows:verify")),
    ),
    "second_factor": (
        (PhoneNumberUnavailable, Refusal("second_factor_needs_phone", "accounts:account")),
        (PasswordRequired, Refusal("second_factor_needs_password", "accounts:account")),
    ),
}

# Whatever the step: a code on its way is typed on the code page.
_ANY_STEP = (
    (CodeAlreadySent, Refusal("already_sent", "flows:verify", messages.INFO)),
    (VerificationInProgress, Refusal("in_progress", "flows:verify")),
)


def refusal_for(step: str, exc: Exception) -> Refusal | None:
    """Return what to tell a person whose `step` was refused with `exc`, if it is a refusal."""
    for cls, refusal in (*_ANY_STEP, *REFUSALS[step]):
        if isinstance(exc, cls):
            return refusal
    return None


def attempts_text(attempts_left: int | None) -> str:
    if attempts_left is None:
        return "Try again."
    return f"{attempts_left} attempt{'s' if attempts_left != 1 else ''} left."


def wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _params(exc: Exception) -> dict:
    params = {}
    pending = getattr(exc, "pending", None)
    if pending is not None:
        params["number"] = mask_phone_number(pending.number)
    if isinstance(exc, IncorrectCode):
        params["attempts"] = attempts_text(exc.attempts_left)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        params["wait"] = wait_text(retry_after)
    return params
