"""The flows of the pages: log in, the second factor, the account's changes.

An adapter over the verification process (process.py) for the pages: the
session keeps the pending verification, server side only, so the upstream
request id never reaches the browser. Views call these functions and turn
their refusals into messages (refusals.py).
"""

from __future__ import annotations

import contextlib
import logging
import secrets

from django.conf import settings
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest

from accounts.models import User
from accounts.phone import mask_phone_number
from accounts.selectors import user_get_by_phone_number
from verificationlog.models import Purpose

from . import limits
from .exceptions import (
    NoPendingVerification,
    PasswordRequired,
    PhoneNumberUnavailable,
    SecondFactorRequired,
    SecondFactorUnavailable,
)
from .process import (
    PENDING_SESSION_KEY,
    PendingVerification,
    VerificationProcess,
    calls_possible,
    number_holder,
    resend_wait,
    upstream_latency,
)

__all__ = [
    "PENDING_SESSION_KEY",
    "PendingVerification",
    "calls_possible",
    "number_holder",
    "resend_wait",
    "upstream_latency",
]

logger = logging.getLogger(__name__)

AUTHENTICATION_BACKEND = "accounts.backends.ModelBackend"


def _process(request: HttpRequest) -> VerificationProcess:
    return VerificationProcess.for_session(request)


def pending_get(request: HttpRequest) -> PendingVerification | None:
    """Return the session's live pending verification, dropping an expired one."""
    return _process(request).pending()


def pending_require(request: HttpRequest) -> PendingVerification:
    """Return the session's live pending verification (see VerificationProcess.require)."""
    return _process(request).require()


def verification_start(request: HttpRequest, **kwargs) -> PendingVerification:
    """Send a code and make it the session's pending verification (VerificationProcess.start)."""
    return _process(request).start(**kwargs)


def verification_check(request: HttpRequest, *, code: str) -> PendingVerification:
    """Check `code` against the session's pending verification (VerificationProcess.check)."""
    return _process(request).check(code)


def verification_done(request: HttpRequest, pending: PendingVerification) -> None:
    """Forget a verified verification: what its code was for is done (or refused)."""
    _process(request).done(pending)


def verification_unfinished(request: HttpRequest, pending: PendingVerification) -> None:
    """Let a retry finish `pending`: finishing it failed (the database or the cache)."""
    _process(request).unfinished(pending)


def verification_resend(request: HttpRequest) -> PendingVerification:
    """Send a fresh code for the pending verification; counts as a start."""
    return _process(request).resend()


def verification_call(request: HttpRequest) -> PendingVerification:
    """Move the pending verification to its next channel (a voice call); counts as a start."""
    return _process(request).call()


def verification_cancel(request: HttpRequest) -> bool:
    """Forget the pending verification; return whether the provider stopped it too."""
    return _process(request).cancel_here()


def verification_abandon(request: HttpRequest) -> None:
    """Cancel the session's pending verification: the person logs out or in another way."""
    _process(request).abandon()


def password_attempt_start(request: HttpRequest, *, username: str) -> None:
    """Count a password attempt for the client and the username; RateLimited over a limit."""
    limits.limit_password_attempt(request, username=username)


def password_attempt_not_wrong(request: HttpRequest, *, username: str) -> None:
    """Give back the attempt of a password that was not wrong: only wrong ones count."""
    limits.password_attempt_uncount(request, username=username)


class StepUpAction:
    """What a fresh code to the current phone allows."""

    DISABLE_2FA = "disable_2fa"
    REMOVE_PHONE = "remove_phone"
    CHANGE_PHONE = "change_phone"
    SET_PASSWORD = "set_password"  # noqa: S105 (an action name, not a password)


def phone_login_finish(request: HttpRequest, pending: PendingVerification) -> User:
    """Log in the owner of the verified number, creating them when sign-up is open.

    Raises SecondFactorRequired when the owner chose password + code: the
    phone alone is one factor, and they chose two.
    """
    user = _number_owner(pending)
    if user is None:
        if not settings.PASSWORDLESS_SIGNUP:
            raise NoPendingVerification
        user = _user_create_for_phone(pending.number)
    if user_requires_password(user):
        raise SecondFactorRequired
    user_login(request, user, finishing=pending)
    logger.info("phone login user_id=%s number=%s", user.pk, mask_phone_number(pending.number))
    return user


def _number_owner(pending: PendingVerification) -> User | None:
    """Return the active user whose phone number is the verified one, if any.

    The start looked the number up and kept its holder's id: read by that
    primary key, and by the number only when there was no holder then or the
    account changed since (deactivated, deleted, or given another number).
    """
    if pending.user_id is not None:
        try:
            user = User._default_manager.get(pk=pending.user_id)
        except User.DoesNotExist:
            user = None
        if user is not None and user.is_active and str(user.phone_number_for_2fa) == pending.number:
            return user
    return user_get_by_phone_number(pending.number)


def user_login(
    request: HttpRequest, user: User, *, finishing: PendingVerification | None = None
) -> None:
    """Log `user` in: Django's login() and the new session, all or nothing.

    login() moves the session to a new key (its row written, the old row
    deleted), then its receivers write (last_login), and the new session is
    written with the login in it, without the verification it is `finishing`.
    Should one of those writes fail, the transaction takes the others back,
    so the browser's session, and the verified code it holds, are still
    there for the retry. Once they are in, the end of the request has
    nothing left to write (passwordless.sessions): its cookie reaches the
    browser even if the database fails then.
    """
    with session_moving(request):
        if finishing is not None:
            _process(request).storage.clear(finishing.request_id)
        login(request, user, backend=AUTHENTICATION_BACKEND)


def user_password_changed(request: HttpRequest, user: User, *, save) -> None:
    """Save `user`'s new password (`save()`), keeping this session logged in, all or nothing.

    Django's update_session_auth_hash() moves the session to a new key and
    deletes the old row (any other session of the user ends with the old
    password's hash): as for a login, the password, the move and the new
    session are written together.
    """
    with session_moving(request):
        save()
        update_session_auth_hash(request, user)


@contextlib.contextmanager
def session_moving(request: HttpRequest):
    """Write what the block writes and the session it moves to a new key in one transaction.

    On the database of the users and, when a router puts them elsewhere, on
    that of the sessions. The session is saved inside, so the end of the
    request has nothing left to write, and without a savepoint: a new key
    that is taken fails the whole transaction (passwordless.sessions).
    """
    aliases = {router.db_for_write(User)}
    model = getattr(request.session, "model", None)
    if model is not None:
        aliases.add(router.db_for_write(model))
    with contextlib.ExitStack() as transactions:
        for alias in sorted(aliases):
            transactions.enter_context(transaction.atomic(using=alias))
        yield
        save_in_transaction = getattr(request.session, "save_in_transaction", None)
        if save_in_transaction is not None:
            save_in_transaction()
        else:
            request.session.save()


def user_requires_password(user: User) -> bool:
    """Whether the user must pass a password before a code logs them in."""
    return (
        user.is_2fa_enabled
        and user.has_usable_password()
        and not settings.PHONE_LOGIN_FOR_2FA_USERS
    )


def password_login_start(
    request: HttpRequest, *, user: User, next_url: str = ""
) -> PendingVerification | None:
    """Log `user` in after their password, or start the code they chose as second factor.

    Returns the pending verification when a code is needed (the person is not
    logged in yet), None when the password was enough.
    """
    if not user.is_2fa_enabled:
        # A code this session was waiting for will not be typed now.
        verification_abandon(request)
        user_login(request, user)
        return None
    if not user.phone_number_for_2fa:
        # Fail closed: the account asks for a code and has nowhere to send it.
        raise SecondFactorUnavailable
    return verification_start(
        request,
        number=str(user.phone_number_for_2fa),
        purpose=Purpose.SECOND_FACTOR,
        user=user,
        next_url=next_url,
    )


def second_factor_finish(request: HttpRequest, pending: PendingVerification) -> User:
    """Log in the user who passed the password step, now that the code is right."""
    user = User.objects.filter(pk=pending.user_id, is_active=True).first()
    if user is None or str(user.phone_number_for_2fa) != pending.number:
        # The account changed between the two steps: start over.
        raise NoPendingVerification
    user_login(request, user, finishing=pending)
    logger.info("second factor login user_id=%s", user.pk)
    return user


def phone_change_start(request: HttpRequest, *, user: User, number: str) -> PendingVerification:
    """Begin moving `user` to `number`: first a step-up code to the current phone, if any.

    The new number is saved only once a code sent to it is checked.
    """
    if str(user.phone_number_for_2fa or "") == number:
        raise PhoneNumberUnavailable("this is already the account's number")
    limits.limit_phone_change(request, user_id=user.pk)
    # A number of another account is not refused here, which would tell
    # anyone who has an account: it goes through the code page like any
    # other, nothing is sent to it (a decoy, see number_holder), and no code
    # typed for it is ever right.
    if user.phone_number_for_2fa:
        return step_up_start(
            request, user=user, action=StepUpAction.CHANGE_PHONE, new_number=number
        )
    return verification_start(request, number=number, purpose=Purpose.NEW_PHONE, user=user)


def step_up_start(
    request: HttpRequest,
    *,
    user: User,
    action: str,
    new_number: str = "",
    password_hash: str = "",
) -> PendingVerification:
    """Send a fresh code to the user's current phone before a sensitive change."""
    if not user.phone_number_for_2fa:
        raise PhoneNumberUnavailable("the account has no phone number")
    return verification_start(
        request,
        number=str(user.phone_number_for_2fa),
        purpose=Purpose.STEP_UP,
        user=user,
        action=action,
        new_number=new_number,
        password_hash=password_hash,
    )


def first_password_set(request: HttpRequest, *, user: User, password: str):
    """Give a phone-only user a password, after a fresh code to their phone.

    A first password is a new way into the account: whoever holds a stolen
    session must not be able to add one. Returns the pending step-up, or None
    when the account has no phone to confirm with (the password is set now).
    """
    if not user.phone_number_for_2fa:
        user.set_password(password)
        user_password_changed(request, user, save=lambda: user.save(update_fields=["password"]))
        return None
    return step_up_start(
        request,
        user=user,
        action=StepUpAction.SET_PASSWORD,
        password_hash=make_password(password),
    )


def _account_user(request: HttpRequest, pending: PendingVerification) -> User:
    """Return the logged-in user the pending verification was started for."""
    user = request.user
    if not user.is_authenticated or user.pk != pending.user_id:
        raise NoPendingVerification
    return user


def new_phone_finish(request: HttpRequest, pending: PendingVerification) -> User:
    """Save the verified number as the user's phone."""
    user = _account_user(request, pending)
    user.phone_number_for_2fa = pending.number
    try:
        with transaction.atomic():
            user.save(update_fields=["phone_number_for_2fa"])
    except IntegrityError as exc:
        # Another account took the number between the code and now.
        raise PhoneNumberUnavailable("the number belongs to another account") from exc
    logger.info("phone changed user_id=%s number=%s", user.pk, mask_phone_number(pending.number))
    return user


def step_up_finish(
    request: HttpRequest, pending: PendingVerification
) -> PendingVerification | None:
    """Apply the change the fresh code allowed; return the next verification, if any."""
    user = _account_user(request, pending)
    if str(user.phone_number_for_2fa or "") != pending.number:
        raise NoPendingVerification
    if pending.action == StepUpAction.DISABLE_2FA:
        user.is_2fa_enabled = False
        user.save(update_fields=["is_2fa_enabled"])
    elif pending.action == StepUpAction.REMOVE_PHONE:
        user.phone_number_for_2fa = None
        user.is_2fa_enabled = False
        user.save(update_fields=["phone_number_for_2fa", "is_2fa_enabled"])
    elif pending.action == StepUpAction.CHANGE_PHONE:
        return verification_start(
            request, number=pending.new_number, purpose=Purpose.NEW_PHONE, user=user
        )
    elif pending.action == StepUpAction.SET_PASSWORD and pending.password_hash:
        user.password = pending.password_hash
        # This session stays logged in; any other session of the user ends.
        user_password_changed(request, user, save=lambda: user.save(update_fields=["password"]))
    else:
        raise NoPendingVerification
    logger.info("step-up %s done user_id=%s", pending.action, user.pk)
    return None


def second_factor_enable(*, user: User) -> None:
    """Ask for a code after the password from now on."""
    if not user.phone_number_for_2fa:
        raise PhoneNumberUnavailable("the account has no phone number")
    if not user.has_usable_password():
        raise PasswordRequired
    user.is_2fa_enabled = True
    user.save(update_fields=["is_2fa_enabled"])


def _user_create_for_phone(number: str) -> User:
    try:
        with transaction.atomic():
            user = User(username=f"user-{secrets.token_hex(6)}", phone_number_for_2fa=number)
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        # Another request verified the same number a moment earlier, or a
        # deactivated account holds it: nobody is logged in then.
        user = user_get_by_phone_number(number)
        if user is None:
            raise NoPendingVerification from None
        return user
