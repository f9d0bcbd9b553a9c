"""The verification flows: start, check, resend, call, cancel, finish.

The session holds at most one pending verification, a dict under
PENDING_SESSION_KEY, server side only: the upstream request id never reaches
the browser. Views call these functions and turn their exceptions into
messages; the provider is reached only through `accounts.verification`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import secrets
import time

from django.conf import settings
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from . import defences, limits
from .events import DECOY_DETAIL, Outcome, outcome_for_error, verification_event
from .exceptions import (
    CodeAlreadySent,
    NoPendingVerification,
    NumberNotAllowed,
    PasswordRequired,
    PhoneNumberUnavailable,
    RateLimited,
    ResendFailed,
    ResendTooSoon,
    SecondFactorRequired,
    SecondFactorUnavailable,
    SendingPaused,
    VerificationInProgress,
)
from .live_requests import (
    LiveRequest,
    StartUnderWay,
    live_request_claim,
    live_request_end,
    live_request_finishing,
    live_request_finishing_failed,
    live_request_forget_verified,
    live_request_release,
    live_request_save,
    live_request_sent,
    live_request_verified,
    live_request_was_verified,
    step_digest,
)
from .models import Purpose, User
from .phone import mask_phone_number
from .selectors import phone_number_holder, user_get_by_phone_number
from .verification import get_backend
from .verification.backends.decoy import VerificationBackend as DecoyBackend
from .verification.exceptions import (
    ConcurrentVerification,
    IncorrectCode,
    ProviderUnavailable,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
    VerificationExpired,
)

logger = logging.getLogger(__name__)

PENDING_SESSION_KEY = "_pending_verification"
AUTHENTICATION_BACKEND = "accounts.backends.ModelBackend"


@dataclasses.dataclass
class PendingVerification:
    """The verification this session waits on."""

    purpose: str
    number: str
    request_id: str
    started_at: float
    sent_at: float
    user_id: int | None = None
    next_url: str = ""
    failed_attempts: int = 0
    # A stand-in for a number that cannot log in (PASSWORDLESS_SIGNUP off):
    # the person sees what everyone sees, but nothing was sent and no code
    # will ever be accepted.
    decoy: bool = False
    # For a step-up check: what the fresh code allows (a StepUpAction).
    action: str = ""
    # For a phone change: the number that gets a code once the step-up is done.
    new_number: str = ""
    # For a first password: its hash, saved once the step-up is done.
    password_hash: str = ""
    # The provider accepted the code; what it was for is not done yet (the
    # database or the cache failed on the way). A retry finishes it without
    # asking the provider again, which would answer that the code is used.
    verified: bool = False
    # The session key the code was typed under (the cache's copy of the
    # fact is kept for that session alone).
    verified_in: str = ""

    @property
    def expires_at(self) -> float:
        return self.started_at + settings.VERIFY_CODE_TTL

    @property
    def is_expired(self) -> bool:
        return time.time() >= self.expires_at


def pending_get(request: HttpRequest) -> PendingVerification | None:
    """Return the session's live pending verification, dropping an expired one."""
    try:
        return pending_require(request)
    except (NoPendingVerification, VerificationExpired):
        return None


def pending_require(request: HttpRequest) -> PendingVerification:
    """Return the session's live pending verification.

    Raises NoPendingVerification when there is none, and VerificationExpired
    (dropping it) when its code has expired, so the person is told which.
    """
    data = request.session.get(PENDING_SESSION_KEY)
    if not data:
        raise NoPendingVerification
    try:
        pending = PendingVerification(**data)
    except TypeError:
        # Written by an older version of this code: start again.
        pending_clear(request)
        raise NoPendingVerification from None
    if pending.is_expired:
        pending_clear(request)
        raise VerificationExpired("the code expired")
    return pending


def pending_save(request: HttpRequest, pending: PendingVerification) -> None:
    # A flat record of plain values: a shallow copy, not asdict()'s deep one.
    request.session[PENDING_SESSION_KEY] = dict(vars(pending))


def pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)


def verification_backend(*, decoy: bool):
    """Return the provider, or the stand-in for numbers that cannot log in.

    The stand-in copies the provider's rules on calls and early cancels, so
    that its answers match a real request's.
    """
    backend = get_backend()
    if not decoy:
        return backend
    return DecoyBackend(
        next_events=backend.next_events,
        cancel_not_before=backend.cancel_not_before,
        cancel_refused_after_next=backend.cancel_refused_after_next,
    )


def _cancel_quietly(pending: PendingVerification) -> None:
    """Cancel a request nobody waits for any more, upstream where the provider allows it.

    Never fails: the request is forgotten here whatever the provider says.
    """
    live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
    with contextlib.suppress(VerificationError):
        verification_backend(decoy=pending.decoy).cancel(pending.request_id)


def pending_step(pending: PendingVerification) -> str:
    """Return what the pending verification's code approves, as live_requests compares it."""
    return step_digest(
        purpose=pending.purpose,
        user_id=pending.user_id,
        action=pending.action,
        new_number=pending.new_number,
        password_hash=pending.password_hash,
    )


class _UpstreamLatency:
    """How long the provider takes to answer, learned per process.

    A decoy (a number that cannot log in) makes no upstream call; without a
    pause it would answer measurably faster than a real start or check and
    tell an attacker which numbers are registered. Its own work (the stand-in
    request in the cache) is padded to about as long as the provider lately
    took, so that the decoy's answer costs what a real one does, no more, no
    less. Kept in memory: no I/O on the hot path.
    """

    def __init__(self):
        self.seconds = {"start": 0.0, "check": 0.0}

    # A decoy never waits longer than this, whatever the provider did.
    CAP_SECONDS = 2.0

    def run(self, kind: str, call, *args, decoy: bool):
        """Call the provider (learning its speed), or the stand-in padded to that speed."""
        if decoy:
            return self.imitate(kind, call, *args)
        return self.measure(kind, call, *args)

    def measure(self, kind: str, call, *args):
        started = time.monotonic()
        try:
            result = call(*args)
        except ProviderUnavailable:
            # Answers only (a wrong code is one), not failures: one timeout
            # would otherwise make every decoy wait for seconds.
            raise
        except VerificationError:
            self._learn(kind, time.monotonic() - started)
            raise
        self._learn(kind, time.monotonic() - started)
        return result

    def imitate(self, kind: str, call, *args):
        """Run the stand-in's `call`, then wait out the rest of a provider's usual time."""
        target = self.seconds[kind] * _random.uniform(0.9, 1.1)
        started = time.monotonic()
        try:
            return call(*args)
        finally:
            remaining = target - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)

    def _learn(self, kind: str, elapsed: float) -> None:
        elapsed = min(elapsed, self.CAP_SECONDS)
        previous = self.seconds[kind]
        self.seconds[kind] = elapsed if not previous else previous * 0.8 + elapsed * 0.2


_random = secrets.SystemRandom()
upstream_latency = _UpstreamLatency()


def number_holder(
    purpose: str, number: str, *, user: User | None = None
) -> tuple[int | None, bool]:
    """Return who holds `number` (a user id or None) and whether a code to it is a decoy.

    A decoy is a request that can never succeed, run through a stand-in that
    sends nothing, so that the answers do not tell who has an account: a
    phone login to a number of a deactivated account, or of nobody while
    sign-up is closed; and a new phone number (`user` adding it) that
    belongs to another account. One query, whose answer also names the user
    in the verification log.
    """
    if purpose == Purpose.NEW_PHONE:
        holder = phone_number_holder(number)
        return None, holder is not None and (user is None or holder[0] != user.pk)
    if purpose not in (Purpose.LOGIN, Purpose.API):
        return None, False
    holder = phone_number_holder(number)
    if holder is None:
        return None, not settings.PASSWORDLESS_SIGNUP
    holder_id, active = holder
    return holder_id, not active


def verification_start(
    request: HttpRequest,
    *,
    number: str,
    purpose: str = Purpose.LOGIN,
    user: User | None = None,
    next_url: str = "",
    action: str = "",
    new_number: str = "",
    password_hash: str = "",
) -> PendingVerification:
    """Send a code to `number` and make it the session's pending verification.

    When the number already has a live request started here for the very
    same step (a double click, another tab, the app), nothing is sent: that
    request becomes this session's pending verification too, and
    CodeAlreadySent says so. Raises RateLimited before anything is sent,
    VerificationInProgress when this session's code for another step is on
    its way to the number, and the provider's outcomes otherwise. A failed
    start stores nothing and keeps any earlier pending verification.
    """
    current = pending_get(request)
    holder_id, decoy = number_holder(purpose, number, user=user)
    user_id = user.pk if user else holder_id
    event = {"purpose": purpose, "number": number, "user_id": user_id}
    step = step_digest(
        purpose=purpose,
        user_id=user_id,
        action=action,
        new_number=new_number,
        password_hash=password_hash,
    )
    try:
        live, adopted = request_start(request, number=number, decoy=decoy, step=step, event=event)
    except ConcurrentVerification as exc:
        if current and current.number == number and exc.request_id == current.request_id:
            # This session's own code for the number is on its way. It may
            # serve the same step again, never another one: a code a person
            # asked for to remove their phone must not approve a password
            # someone else slipped into the session meanwhile.
            if pending_step(current) == step:
                raise CodeAlreadySent(current) from exc
            raise VerificationInProgress(current) from exc
        raise
    if current and current.request_id != live.request_id and not current.verified:
        _cancel_quietly(current)
    pending = PendingVerification(
        purpose=purpose,
        number=number,
        request_id=live.request_id,
        started_at=live.started_at,
        sent_at=live.sent_at,
        user_id=user_id,
        next_url=next_url,
        failed_attempts=current.failed_attempts
        if current and current.request_id == live.request_id
        else 0,
        decoy=decoy,
        action=action,
        new_number=new_number,
        password_hash=password_hash,
    )
    pending_save(request, pending)
    if adopted:
        raise CodeAlreadySent(pending)
    return pending


def request_start(
    request: HttpRequest, *, number: str, decoy: bool, step: str, event: dict
) -> tuple[LiveRequest, bool]:
    """Start a request for `number`, or return the live one this site started for `step`.

    Returns the request and whether it was adopted (nothing sent). The pages
    and the API both start through here, so a number has one code on its way
    whichever entry point asked. An adopted request costs nothing and counts
    against no send limit; its checks count against the request as before.
    A live request for another step is refused as ConcurrentVerification,
    naming it. `event` holds the verification_event fields (purpose, number,
    user_id).
    """
    # The site's rules on numbers hold for an adopted request too: a country
    # or number type refused since the code went out gets no further.
    refusal = defences.number_refusal(number)
    if refusal is not None:
        verification_event(request, outcome=Outcome.REFUSED, detail=refusal.reason, **event)
        raise refusal
    try:
        live, claim, stale_request_id = live_request_claim(number, decoy=decoy)
    except StartUnderWay as exc:
        verification_event(
            request, outcome=Outcome.UPSTREAM_ERROR, detail="start under way", **event
        )
        raise ProviderUnavailable("another start for the number is still under way") from exc
    if live is not None:
        if live.step != step:
            verification_event(request, outcome=Outcome.REFUSED, detail="concurrent", **event)
            raise ConcurrentVerification(
                "a code for another step is on its way", request_id=live.request_id
            )
        try:
            limits.limit_adopt(request, number=number)
        except RateLimited as exc:
            verification_event(request, outcome=Outcome.RATE_LIMITED, detail=exc.scope, **event)
            raise
        logger.info(
            "verification adopted purpose=%s number=%s",
            event["purpose"],
            mask_phone_number(number),
        )
        return live, True
    try:
        limit_send(request, event)
        backend = verification_backend(decoy=decoy)
        if not decoy:
            event["backend"] = backend.name
        if stale_request_id:
            _cancel_stale(request, backend, stale_request_id, decoy=decoy, event=event)
        try:
            request_id = upstream_latency.run("start", backend.start, number, decoy=decoy)
        except VerificationError as exc:
            detail = "concurrent" if isinstance(exc, ConcurrentVerification) else exc.status
            verification_event(request, outcome=outcome_for_error(exc), detail=detail, **event)
            raise
    except BaseException:
        live_request_release(number, decoy=decoy, token=claim)
        raise
    now = time.time()
    live = LiveRequest(request_id=request_id, step=step, decoy=decoy, started_at=now, sent_at=now)
    live_request_save(number, live)
    defences.conversion_watch()
    verification_event(
        request,
        outcome=Outcome.STARTED,
        request_id="" if decoy else request_id,
        detail=DECOY_DETAIL if decoy else "",
        **event,
    )
    return live, False


def _cancel_stale(request, backend, request_id: str, *, decoy: bool, event: dict) -> None:
    """Cancel a request of the number whose code expired here unused: nobody will type it.

    The provider may keep it live longer than the site takes its code (a long
    channel timeout, so that no call comes unasked); left alone, it would
    refuse this start as concurrent.
    """
    try:
        backend.cancel(request_id)
    except VerificationError:
        # Over already, or the provider refuses (after a call): the start
        # below finds out.
        return
    verification_event(
        request,
        outcome=Outcome.CANCELLED,
        request_id="" if decoy else request_id,
        detail="abandoned",
        **event,
    )


def limit_send(request: HttpRequest, event: dict) -> None:
    """Apply the limits and defences on sending a code; record a refusal.

    `event` holds the verification_event fields (purpose, number, user_id).
    The web flows and the API both send through here.
    """
    try:
        limits.limit_start(request, number=event["number"])
    except RateLimited as exc:
        verification_event(request, outcome=Outcome.RATE_LIMITED, detail=exc.scope, **event)
        raise
    except NumberNotAllowed as exc:
        verification_event(request, outcome=Outcome.REFUSED, detail=exc.reason, **event)
        raise
    except SendingPaused:
        verification_event(request, outcome=Outcome.REFUSED, detail="site cap", **event)
        raise


def calls_possible() -> bool:
    """Whether the provider can call the person to read out the code ("Call me instead")."""
    return get_backend().supports_next


def password_attempt_start(request: HttpRequest, *, username: str) -> None:
    """Count a password attempt for the client and the username; RateLimited over a limit."""
    limits.limit_password_attempt(request, username=username)


def password_attempt_not_wrong(request: HttpRequest, *, username: str) -> None:
    """Give back the attempt of a password that was not wrong: only wrong ones count."""
    limits.password_attempt_uncount(request, username=username)


def resend_wait(sent_at: float) -> int:
    """Return the seconds until a new code or a call may follow a send at `sent_at` (0: now)."""
    return max(0, math.ceil(sent_at + settings.VERIFY_RESEND_COOLDOWN - time.time()))


def _refuse_resend_too_soon(pending: PendingVerification) -> None:
    wait = resend_wait(pending.sent_at)
    if wait:
        raise ResendTooSoon(retry_after=wait, scope="verify.resend.cooldown")


def _pending_event_fields(pending: PendingVerification) -> dict:
    return {"purpose": pending.purpose, "number": pending.number, "user_id": pending.user_id}


def _pending_event(request, pending: PendingVerification, outcome: str, **extra) -> None:
    verification_event(
        request,
        outcome=outcome,
        purpose=pending.purpose,
        number=pending.number,
        request_id="" if pending.decoy else pending.request_id,
        user_id=pending.user_id,
        backend="" if pending.decoy else get_backend().name,
        **extra,
    )


def verification_check(request: HttpRequest, *, code: str) -> PendingVerification:
    """Check `code` against the pending verification and return it when right.

    The pending verification leaves the session on success and when the
    provider says the request is over; it stays for another try on a wrong
    code or when the provider cannot be reached.
    """
    pending = pending_require(request)
    if pending.verified:
        return _finishing(pending)
    if not request.session.session_key:
        request.session.save()
    session_key = request.session.session_key
    try:
        limits.limit_check(request, session_key=session_key, number=pending.number)
    except RateLimited:
        _pending_event(request, pending, Outcome.RATE_LIMITED)
        raise
    if live_request_was_verified(pending.request_id, holder=session_key):
        # This session's code was accepted, and the session could not be
        # saved after it: the cache kept the fact.
        pending.verified, pending.verified_in = True, session_key
        pending_save(request, pending)
        return _finishing(pending)
    try:
        backend = verification_backend(decoy=pending.decoy)
        result = upstream_latency.run(
            "check", backend.check, pending.request_id, code, decoy=pending.decoy
        )
    except VerificationError as exc:
        _pending_event(request, pending, outcome_for_error(exc), detail=exc.status)
        if isinstance(exc, (IncorrectCode, TooManyAttempts)):
            limits.record_wrong_code(request, number=pending.number)
        if isinstance(exc, IncorrectCode):
            pending.failed_attempts += 1
            pending_save(request, pending)
        elif isinstance(exc, VerificationEnded):
            pending_clear(request)
            live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
        raise
    # Kept, as verified, until what the code was for is done
    # (verification_done): in the session, and in the cache for this
    # session alone, in case the session cannot be saved.
    pending.verified, pending.verified_in = True, session_key
    pending_save(request, pending)
    live_request_verified(pending.request_id, holder=session_key)
    _pending_event(
        request,
        pending,
        Outcome.SUCCEEDED,
        price=result.price if result else None,
        currency=result.currency if result else None,
    )
    return _finishing(pending)


def _finishing(pending: PendingVerification) -> PendingVerification:
    """Return `pending` for this request alone to finish; NoPendingVerification for the others.

    The same code posted several times at once is accepted once upstream,
    but every post after that finds the session's verification verified:
    only the first may finish it (one login, one new phone).
    """
    if not live_request_finishing(pending.request_id):
        raise NoPendingVerification("another request is finishing this verification")
    return pending


def verification_done(request: HttpRequest, pending: PendingVerification) -> None:
    """Forget a verified verification: what its code was for is done (or refused).

    A step that started the next verification (a new phone after the
    step-up) keeps that one.
    """
    current = request.session.get(PENDING_SESSION_KEY)
    if current and current.get("request_id") == pending.request_id:
        pending_clear(request)
    live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
    if pending.verified_in:
        live_request_forget_verified(pending.request_id, holder=pending.verified_in)


def verification_unfinished(pending: PendingVerification) -> None:
    """Let a retry finish `pending`: finishing it failed (the database or the cache)."""
    live_request_finishing_failed(pending.request_id)


def verification_resend(request: HttpRequest) -> PendingVerification:
    """Send a fresh code for the pending verification; counts as a start."""
    pending = pending_require(request)
    _refuse_resend_too_soon(pending)
    limit_send(request, _pending_event_fields(pending))
    backend = verification_backend(decoy=pending.decoy)
    # Vonage sends one code per request: a new code is a new request,
    # possible once the old one is cancelled (refused in its first 30 s).
    with contextlib.suppress(VerificationExpired):
        backend.cancel(pending.request_id)
    live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
    try:
        pending.request_id = backend.start(pending.number)
    except VerificationError as exc:
        # The old code is cancelled and no new one was sent: say so, and
        # let the person start again rather than type a dead code.
        pending_clear(request)
        _pending_event(request, pending, outcome_for_error(exc), detail=exc.status)
        raise ResendFailed("the old request is cancelled, the new one failed") from exc
    now = time.time()
    pending.started_at = pending.sent_at = now
    pending.failed_attempts = 0
    pending_save(request, pending)
    live = LiveRequest(
        request_id=pending.request_id,
        step=pending_step(pending),
        decoy=pending.decoy,
        started_at=now,
        sent_at=now,
    )
    live_request_save(pending.number, live)
    _pending_event(request, pending, Outcome.STARTED, detail="resend")
    return pending


def verification_call(request: HttpRequest) -> PendingVerification:
    """Move the pending verification to its next channel (a voice call); counts as a start."""
    pending = pending_require(request)
    _refuse_resend_too_soon(pending)
    limit_send(request, _pending_event_fields(pending))
    try:
        verification_backend(decoy=pending.decoy).trigger_next(pending.request_id)
    except VerificationEnded:
        pending_clear(request)
        live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
        raise
    pending.sent_at = time.time()
    pending_save(request, pending)
    live_request_sent(
        pending.number,
        decoy=pending.decoy,
        request_id=pending.request_id,
        sent_at=pending.sent_at,
    )
    _pending_event(request, pending, Outcome.STARTED, detail="call")
    return pending


def verification_cancel(request: HttpRequest) -> bool:
    """Forget the pending verification; return whether the provider stopped it too."""
    pending = pending_get(request)
    pending_clear(request)
    if pending is None:
        return True
    _pending_event(request, pending, Outcome.CANCELLED)
    live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
    try:
        verification_backend(decoy=pending.decoy).cancel(pending.request_id)
    except VerificationError:
        # Refused (the first 30 s, after the second event), already over, or
        # the provider unreachable: cleared here all the same, and said so.
        return False
    return True


def verification_abandon(request: HttpRequest) -> None:
    """Cancel the session's pending verification: the person logs out or in another way.

    Nobody will type its code any more; cancelled upstream, the provider
    stops its workflow (no call follows the unused SMS).
    """
    pending = pending_get(request)
    if pending is None:
        return
    pending_clear(request)
    _pending_event(request, pending, Outcome.CANCELLED, detail="abandoned")
    _cancel_quietly(pending)


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
    user = user_get_by_phone_number(pending.number)
    if user is None:
        if not settings.PASSWORDLESS_SIGNUP:
            raise NoPendingVerification
        user = _user_create_for_phone(pending.number)
    if user_requires_password(user):
        raise SecondFactorRequired
    user_login(request, user)
    logger.info("phone login user_id=%s number=%s", user.pk, mask_phone_number(pending.number))
    return user


def user_login(request: HttpRequest, user: User) -> None:
    """Log `user` in: Django's login(), its database writes all or nothing.

    login() moves the session to a new key (written to the database with the
    `db` and `cached_db` engines, the old row deleted), then its receivers
    write (last_login). Should one of those writes fail, the transaction
    takes the others back, so the browser's session, and the verified code
    it holds, are still there for the retry.
    """
    with transaction.atomic():
        login(request, user, backend=AUTHENTICATION_BACKEND)


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
    user_login(request, user)
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
        user.save(update_fields=["password"])
        update_session_auth_hash(request, user)
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
        user.save(update_fields=["password"])
        # This session stays logged in; any other session of the user ends.
        update_session_auth_hash(request, user)
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
