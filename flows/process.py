"""One verification from start to finish, whatever the entry point asked for it.

In the spirit of allauth's code verification process, `VerificationProcess`
owns every step of a verification: start, check, resend, call (the next
channel), cancel and done, with the limits, the stand-in for numbers that
cannot log in (its rules and its timing), the live request each number
shares (live_requests.py) and the event record (events.py). The entry points
are adapters over it: the pages (services.py and views.py), the JSON API
(api/flows.py) and `manage.py verification`. None of them reaches the
provider or a limit another way.

Where the state between two steps is kept is the entry point's choice, a
small storage with `load`, `save` and `clear`:

- SessionStorage: the Django session, server side (the pages);
- TokenStorage: the API's signed token and its record in the shared cache;
- OperatorStorage: nothing kept; the operator names the request by hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import secrets
import time

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from accounts.models import User
from accounts.phone import mask_phone_number
from accounts.selectors import phone_number_holder
from passwordless import outages
from verification import BaseVerificationBackend, CheckResult, get_backend
from verification.backends.base import SearchResult
from verification.backends.console import VerificationBackend as ConsoleBackend
from verification.backends.decoy import VerificationBackend as DecoyBackend
from verification.exceptions import (
    ConcurrentVerification,
    IncorrectCode,
    ProviderUnavailable,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
    VerificationExpired,
)
from verificationlog.events import DECOY_DETAIL, Outcome, outcome_for_error, verification_event
from verificationlog.models import Purpose, VerificationLog

from . import defences, limits
from .api.tokens import ApiVerification, token_issue, token_record_sent, token_revoke
from .exceptions import (
    CodeAlreadySent,
    NoPendingVerification,
    NumberNotAllowed,
    RateLimited,
    ResendFailed,
    ResendTooSoon,
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
    live_request_release,
    live_request_save,
    live_request_sent,
    live_request_verified,
    live_request_was_verified,
    step_digest,
)

logger = logging.getLogger(__name__)

PENDING_SESSION_KEY = "_pending_verification"


@dataclasses.dataclass
class PendingVerification:
    """A verification between two steps, as its storage keeps it."""

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
    # Who typed the code (a session key, or the API's token): the cache's
    # copy of the fact is kept for them alone.
    verified_in: str = ""

    @property
    def expires_at(self) -> float:
        return self.started_at + settings.VERIFY_CODE_TTL

    @property
    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    @property
    def step(self) -> str:
        """Return what the code approves, as live_requests compares it."""
        return step_digest(
            purpose=self.purpose,
            user_id=self.user_id,
            action=self.action,
            new_number=self.new_number,
            password_hash=self.password_hash,
        )


class SessionStorage:
    """The pages': one pending verification in the server-side session."""

    def __init__(self, request: HttpRequest):
        self.session = request.session

    def load(self) -> PendingVerification | None:
        data = self.session.get(PENDING_SESSION_KEY)
        if not data:
            return None
        try:
            return PendingVerification(**data)
        except TypeError:
            # Written by an older version of this code: start again.
            self.clear()
            return None

    def save(self, pending: PendingVerification) -> None:
        # A flat record of plain values: a shallow copy, not asdict()'s deep one.
        self.session[PENDING_SESSION_KEY] = dict(vars(pending))

    def clear(self, request_id: str = "") -> None:
        """Forget the pending verification (only `request_id`'s, when named)."""
        data = self.session.get(PENDING_SESSION_KEY)
        if data and (not request_id or data.get("request_id") == request_id):
            self.session.pop(PENDING_SESSION_KEY, None)

    @property
    def holder(self) -> str:
        """Return who the checks are counted against: the session, saved if new."""
        if not self.session.session_key:
            self.session.save()
        return self.session.session_key


class TokenStorage:
    """The API's: a signed token naming a record in the shared cache (api/tokens.py)."""

    def __init__(self, verification: ApiVerification | None = None):
        self.verification = verification
        self.token = ""

    def load(self) -> PendingVerification | None:
        verification = self.verification
        if verification is None:
            return None
        return PendingVerification(
            purpose=Purpose.API,
            number=verification.number,
            request_id=verification.request_id,
            started_at=verification.started_at,
            sent_at=verification.sent_at,
            decoy=verification.decoy,
        )

    def save(self, pending: PendingVerification) -> None:
        verification = self.verification
        if verification is None or verification.request_id != pending.request_id:
            self.token, self.verification = token_issue(
                request_id=pending.request_id,
                number=pending.number,
                decoy=pending.decoy,
                started_at=pending.started_at,
                sent_at=pending.sent_at,
            )
        elif pending.sent_at != verification.sent_at:
            self.verification = token_record_sent(verification, sent_at=pending.sent_at)

    def clear(self, request_id: str = "") -> None:
        if self.verification is not None:
            token_revoke(self.verification)

    @property
    def holder(self) -> str:
        return self.verification.limit_key


class OperatorStorage:
    """An operator's: nothing kept between commands; the request is named by hand."""

    def __init__(self, *, request_id: str = "", number: str = ""):
        self.pending = None
        if request_id:
            self.pending = PendingVerification(
                purpose=Purpose.OPERATOR,
                number=number,
                request_id=request_id,
                started_at=time.time(),
                sent_at=0.0,
            )

    def load(self) -> PendingVerification | None:
        return self.pending

    def save(self, pending: PendingVerification) -> None:
        self.pending = pending

    def clear(self, request_id: str = "") -> None:
        self.pending = None

    holder = "operator"


class VerificationProcess:
    """Own one verification from start to finish; `storage` keeps it between steps.

    `request` is the HTTP request of the step (None for an operator's
    command): limits and the log read the client from it.
    """

    def __init__(
        self,
        request: HttpRequest | None,
        storage,
        *,
        backend: BaseVerificationBackend | None = None,
    ):
        self.request = request
        self.storage = storage
        if backend is not None:
            # A command's console backend writes to stderr.
            self.provider = backend
        # An operator's command answers to no limit and sends to any number
        # the provider takes, as the operator's own tool.
        self.operator = isinstance(storage, OperatorStorage)
        # The provider's answer to the last right code (its price).
        self.result: CheckResult | None = None

    @functools.cached_property
    def provider(self) -> BaseVerificationBackend:
        """Return the configured provider, built when a step first needs it.

        Most steps read or tidy the pending verification and never reach the
        provider (the code page, the end of a login).
        """
        return get_backend()

    def backend(self, *, decoy: bool) -> BaseVerificationBackend:
        """Return the provider, or the stand-in for numbers that cannot log in.

        The stand-in copies the provider's rules on calls and early cancels,
        so that its answers match a real request's.
        """
        if not decoy:
            return self.provider
        return DecoyBackend(
            next_events=self.provider.next_events,
            cancel_not_before=self.provider.cancel_not_before,
            cancel_refused_after_next=self.provider.cancel_refused_after_next,
        )

    @classmethod
    def for_session(cls, request: HttpRequest) -> VerificationProcess:
        return cls(request, SessionStorage(request))

    @classmethod
    def for_operator(
        cls, *, request_id: str = "", number: str = "", stream=None
    ) -> VerificationProcess:
        """Return the process of an operator's command, on `request_id` when named.

        A console backend writes its messages to `stream` (the command's stderr).
        """
        backend_class = import_string(settings.VERIFICATION_BACKEND)
        options = {"stream": stream} if issubclass(backend_class, ConsoleBackend) else {}
        storage = OperatorStorage(request_id=request_id, number=number)
        return cls(None, storage, backend=get_backend(**options))

    # The state -------------------------------------------------------------

    def pending(self) -> PendingVerification | None:
        """Return the live pending verification, dropping an expired one."""
        try:
            return self.require()
        except (NoPendingVerification, VerificationExpired):
            return None

    def require(self) -> PendingVerification:
        """Return the live pending verification.

        Raises NoPendingVerification when there is none, and
        VerificationExpired (dropping it) when its code has expired, so the
        person is told which.
        """
        pending = self.storage.load()
        if pending is None:
            raise NoPendingVerification
        if pending.is_expired and not self.operator:
            self.storage.clear()
            raise VerificationExpired("the code expired")
        return pending

    # Start -----------------------------------------------------------------

    def start(
        self,
        *,
        number: str,
        purpose: str = Purpose.LOGIN,
        user: User | None = None,
        next_url: str = "",
        action: str = "",
        new_number: str = "",
        password_hash: str = "",
    ) -> PendingVerification:
        """Send a code to `number` and make it the pending verification.

        When the number already has a live request started here for the very
        same step (a double click, another tab, the app), nothing is sent:
        that request becomes this storage's too, and CodeAlreadySent says so.
        Raises RateLimited before anything is sent, VerificationInProgress
        when this storage's code for another step is on its way to the
        number, and the provider's outcomes otherwise. A failed start stores
        nothing and keeps any earlier pending verification.
        """
        current = self.pending()
        holder_id, decoy = number_holder(purpose, number, user=user)
        user_id = user.pk if user else holder_id
        pending = PendingVerification(
            purpose=purpose,
            number=number,
            request_id="",
            started_at=0.0,
            sent_at=0.0,
            user_id=user_id,
            next_url=next_url,
            decoy=decoy,
            action=action,
            new_number=new_number,
            password_hash=password_hash,
        )
        try:
            live, adopted = self._start_request(pending)
        except ConcurrentVerification as exc:
            if current and current.number == number and exc.request_id == current.request_id:
                # This storage's own code for the number is on its way. It
                # may serve the same step again, never another one: a code a
                # person asked for to remove their phone must not approve a
                # password someone else slipped into the session meanwhile.
                if current.step == pending.step:
                    raise CodeAlreadySent(current) from exc
                raise VerificationInProgress(current) from exc
            raise
        if current and current.request_id != live.request_id and not current.verified:
            self._cancel_quietly(current)
        pending.request_id = live.request_id
        pending.started_at, pending.sent_at = live.started_at, live.sent_at
        if current and current.request_id == live.request_id:
            pending.failed_attempts = current.failed_attempts
        self.storage.save(pending)
        if adopted:
            raise CodeAlreadySent(pending)
        return pending

    def _start_request(self, pending: PendingVerification) -> tuple[LiveRequest, bool]:
        """Start a request for the number, or return the live one started for the same step.

        Returns the request and whether it was adopted (nothing sent). Every
        entry point starts through here, so a number has one code on its way
        whichever asked. An adopted request costs nothing and counts against
        no send limit; its checks count against the request as before. A
        live request for another step is refused as ConcurrentVerification,
        naming it.
        """
        number, decoy, step = pending.number, pending.decoy, pending.step
        event = self._event_fields(pending)
        # The site's rules on numbers hold for an adopted request too: a
        # country or number type refused since the code went out gets no further.
        refusal = None if self.operator else defences.number_refusal(number)
        if refusal is not None:
            self._record(Outcome.REFUSED, event, detail=refusal.reason)
            raise refusal
        try:
            live, claim, stale_request_id = live_request_claim(number, decoy=decoy)
        except StartUnderWay as exc:
            self._record(Outcome.UPSTREAM_ERROR, event, detail="start under way")
            raise ProviderUnavailable("another start for the number is still under way") from exc
        if live is not None:
            # An operator is told of the live request rather than handed it.
            if live.step != step or self.operator:
                self._record(Outcome.REFUSED, event, detail=self._detail("send", "concurrent"))
                raise ConcurrentVerification(
                    "a code for another step is on its way", request_id=live.request_id
                )
            try:
                limits.limit_adopt(self.request, number=number)
            except RateLimited as exc:
                self._record(Outcome.RATE_LIMITED, event, detail=exc.scope)
                raise
            logger.info(
                "verification adopted purpose=%s number=%s",
                pending.purpose,
                mask_phone_number(number),
            )
            return live, True
        try:
            self._limit_send(event)
            backend = self.backend(decoy=decoy)
            if not decoy:
                event["backend"] = backend.name
            if stale_request_id:
                self._cancel_stale(backend, stale_request_id, decoy=decoy, event=event)
            try:
                request_id = upstream_latency.run("start", backend.start, number, decoy=decoy)
            except VerificationError as exc:
                found = self._started_here(pending, exc)
                if found is not None:
                    live_request_save(number, found)
                    return found, True
                status = "concurrent" if isinstance(exc, ConcurrentVerification) else exc.status
                self._record(outcome_for_error(exc), event, detail=self._detail("send", status))
                raise
        except BaseException:
            live_request_release(number, decoy=decoy, token=claim)
            raise
        if not self.operator:
            defences.conversion_watch()
        # The log before the cache: should the cache fail now, the row is what
        # lets the retry find the request the provider has sent (_started_here).
        self._record(
            Outcome.STARTED,
            event,
            request_id="" if decoy else request_id,
            detail=DECOY_DETAIL if decoy else self._detail("send"),
        )
        now = time.time()
        live = LiveRequest(
            request_id=request_id, step=step, decoy=decoy, started_at=now, sent_at=now
        )
        live_request_save(number, live)
        return live, False

    def _started_here(
        self, pending: PendingVerification, exc: VerificationError
    ) -> LiveRequest | None:
        """Return the live request the provider names in refusing a start, if this site
        started it for the same step and its code can still be typed.

        The cache lost the number's record (an outage, a restart) while the
        provider kept the request: the log remembers who started it, so the
        person can type the code they received instead of waiting for it to
        expire.
        """
        if not isinstance(exc, ConcurrentVerification) or not exc.request_id:
            return None
        if pending.decoy or self.operator:
            return None
        row = (
            VerificationLog.objects.filter(
                request_id=exc.request_id, number=pending.number, outcome=Outcome.STARTED
            )
            .order_by("created_at")
            .first()
        )
        if row is None or step_digest(purpose=row.purpose, user_id=row.user_id) != pending.step:
            return None
        started_at = row.created_at.timestamp()
        if started_at + settings.VERIFY_CODE_TTL <= time.time():
            return None
        logger.info(
            "verification found in the log purpose=%s number=%s",
            pending.purpose,
            mask_phone_number(pending.number),
        )
        return LiveRequest(
            request_id=exc.request_id,
            step=pending.step,
            decoy=False,
            started_at=started_at,
            sent_at=started_at,
        )

    def _cancel_stale(self, backend, request_id: str, *, decoy: bool, event: dict) -> None:
        """Cancel a request of the number whose code expired here unused: nobody will type it.

        The provider may keep it live longer than the site takes its code (a
        long channel timeout, so that no call comes unasked); left alone, it
        would refuse this start as concurrent.
        """
        try:
            backend.cancel(request_id)
        except VerificationError:
            # Over already, or the provider refuses (after a call): the
            # start finds out.
            return
        self._record(
            Outcome.CANCELLED,
            event,
            request_id="" if decoy else request_id,
            detail="abandoned",
        )

    def _limit_send(self, event: dict) -> None:
        """Apply the limits and defences on sending a code; record a refusal."""
        if self.operator:
            return
        try:
            limits.limit_start(self.request, number=event["number"])
        except RateLimited as exc:
            self._record(Outcome.RATE_LIMITED, event, detail=exc.scope)
            raise
        except NumberNotAllowed as exc:
            self._record(Outcome.REFUSED, event, detail=exc.reason)
            raise
        except SendingPaused:
            self._record(Outcome.REFUSED, event, detail="site cap")
            raise

    # Check -----------------------------------------------------------------

    def check(self, code: str) -> PendingVerification:
        """Check `code` against the pending verification; return it, verified, when right.

        A right code leaves the verification in its storage, marked
        verified, until what it was for is done (`done`): a retry after a
        failure of the database or the cache finishes it without asking the
        provider again. Only one request finishes it. A wrong code keeps it
        for another try, and so does a provider that cannot be reached; a
        request the provider says is over is forgotten.
        """
        pending = self.require()
        if pending.verified:
            return self._finishing_again(pending)
        holder = self.storage.holder
        if not self.operator:
            try:
                limits.limit_check(self.request, session_key=holder, number=pending.number)
            except RateLimited:
                self._record_step(pending, Outcome.RATE_LIMITED)
                raise
        finishing_until = live_request_was_verified(pending.request_id, holder=holder)
        if finishing_until is not None:
            # This holder's code was accepted, and its storage could not be
            # saved after it: the cache kept the fact.
            pending.verified, pending.verified_in = True, holder
            # Stored as verified only by the request that may finish it: one
            # that lost the race must not leave a verified copy behind.
            self._finishing_again(pending, finishing_until)
            self.storage.save(pending)
            return pending
        try:
            backend = self.backend(decoy=pending.decoy)
            result = upstream_latency.run(
                "check", backend.check, pending.request_id, code, decoy=pending.decoy
            )
        except VerificationExpired:
            if self._verified_by(pending, holder):
                # The provider accepted this holder's code, and neither its
                # storage nor the cache kept the fact through an outage: the
                # log did (below), and the provider now says it is used.
                pending.verified, pending.verified_in = True, holder
                self._finishing_again(pending)
                self.storage.save(pending)
                return pending
            self._refused_check(pending, VerificationExpired("the code expired or was used"))
            raise
        except VerificationError as exc:
            self._refused_check(pending, exc)
            raise
        # The fact is kept three times before anything else may fail: for
        # this holder alone in the cache, with this request's right to finish
        # it; in the verification log (a row naming, as a digest, who typed
        # the code), written even when the cache fails; and in the storage.
        # The cache first: a retry that learns of the code from the log finds
        # this request finishing it (_finishing_again).
        try:
            live_request_verified(pending.request_id, holder=holder)
        finally:
            self._record_step(
                pending,
                Outcome.SUCCEEDED,
                price=result.price if result else None,
                currency=result.currency if result else None,
                detail=self._detail("check") or _verified_detail(holder),
            )
        pending.verified, pending.verified_in = True, holder
        self.storage.save(pending)
        self.result = result or CheckResult(request_id=pending.request_id)
        return pending

    def _refused(self, pending: PendingVerification, exc: VerificationError, action: str) -> None:
        """Record the provider's refusal of `action`; forget a request it says is over."""
        self._record_step(pending, outcome_for_error(exc), detail=self._detail(action, exc.status))
        if isinstance(exc, VerificationEnded):
            self._forget(pending)

    def _refused_check(self, pending: PendingVerification, exc: VerificationError) -> None:
        self._refused(pending, exc, "check")
        if isinstance(exc, (IncorrectCode, TooManyAttempts)) and not self.operator:
            limits.record_wrong_code(self.request, number=pending.number)
        if isinstance(exc, IncorrectCode):
            pending.failed_attempts += 1
            self.storage.save(pending)

    def _verified_by(self, pending: PendingVerification, holder: str) -> bool:
        """Whether the log says the provider accepted `holder`'s code for `pending`."""
        if self.operator or pending.decoy:
            return False
        return VerificationLog.objects.filter(
            request_id=pending.request_id,
            outcome=Outcome.SUCCEEDED,
            detail=_verified_detail(holder),
        ).exists()

    def _finishing_again(
        self, pending: PendingVerification, finishing_until: float | None = None
    ) -> PendingVerification:
        """Return `pending`, verified by an earlier request, for this one alone to finish;
        NoPendingVerification while another request is finishing it.

        The same code posted several times at once is accepted once
        upstream, and the request the provider answered finishes it; every
        post after that finds the verification verified, and may finish it
        only once that request gave up, one at a time (one login, one new
        phone). `finishing_until` is the cache's record of the code when the
        caller just read it.
        """
        if finishing_until is None and pending.verified_in:
            finishing_until = live_request_was_verified(
                pending.request_id, holder=pending.verified_in
            )
        if not live_request_finishing(pending.request_id, finishing_until=finishing_until):
            raise NoPendingVerification("another request is finishing this verification")
        return pending

    def done(self, pending: PendingVerification) -> None:
        """Forget a verified verification: what its code was for is done (or refused).

        A step that started the next verification (a new phone after the
        step-up) keeps that one.
        """
        self.storage.clear(pending.request_id)
        try:
            live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
        except Exception as exc:
            # What the code was for is done (the person is logged in): the
            # cache's record only tidies up, and expires by itself. An outage
            # of the cache now must not turn a done login into the 503 page,
            # which would keep the new session's cookie from the browser.
            if outages.report(exc) is None:
                raise

    def unfinished(self, pending: PendingVerification) -> None:
        """Let a retry finish `pending`: finishing it failed (the database or the cache)."""
        live_request_finishing_failed(pending.request_id, holder=pending.verified_in)

    # A new code, a call ------------------------------------------------------

    def resend(self) -> PendingVerification:
        """Send a fresh code for the pending verification; counts as a start."""
        pending = self.require()
        self._refuse_too_soon(pending)
        self._limit_send(self._event_fields(pending))
        backend = self.backend(decoy=pending.decoy)
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
            self.storage.clear()
            self._record_step(pending, outcome_for_error(exc), detail=exc.status)
            raise ResendFailed("the old request is cancelled, the new one failed") from exc
        now = time.time()
        pending.started_at = pending.sent_at = now
        pending.failed_attempts = 0
        self.storage.save(pending)
        live = LiveRequest(
            request_id=pending.request_id,
            step=pending.step,
            decoy=pending.decoy,
            started_at=now,
            sent_at=now,
        )
        live_request_save(pending.number, live)
        self._record_step(pending, Outcome.STARTED, detail="resend")
        return pending

    def call(self) -> PendingVerification:
        """Move the pending verification to its next channel (a voice call); counts as a start."""
        pending = self.require()
        self._refuse_too_soon(pending)
        self._limit_send(self._event_fields(pending))
        try:
            self.backend(decoy=pending.decoy).trigger_next(pending.request_id)
        except VerificationError as exc:
            self._refused(pending, exc, "next")
            raise
        pending.sent_at = time.time()
        self.storage.save(pending)
        live_request_sent(
            pending.number,
            decoy=pending.decoy,
            request_id=pending.request_id,
            sent_at=pending.sent_at,
        )
        # Logged as a code sent again.
        self._record_step(pending, Outcome.STARTED, detail="next" if self.operator else "call")
        return pending

    def _refuse_too_soon(self, pending: PendingVerification) -> None:
        if self.operator:
            return
        wait = resend_wait(pending.sent_at)
        if wait:
            self._record_step(pending, Outcome.RATE_LIMITED, detail="verify.resend.cooldown")
            raise ResendTooSoon(retry_after=wait, scope="verify.resend.cooldown")

    # Cancel ------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the pending verification, upstream too; the provider's refusal is raised.

        Refused (the first 30 s, after the second event), the verification
        stays; a request the provider says is over is forgotten all the same.
        """
        pending = self.require()
        try:
            self.backend(decoy=pending.decoy).cancel(pending.request_id)
        except VerificationError as exc:
            self._refused(pending, exc, "cancel")
            raise
        self._forget(pending)
        self._record_step(pending, Outcome.CANCELLED, detail="cancel" if self.operator else "")

    def cancel_here(self) -> bool:
        """Forget the pending verification; return whether the provider stopped it too."""
        pending = self.pending()
        self.storage.clear()
        if pending is None:
            return True
        self._record_step(pending, Outcome.CANCELLED)
        live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
        try:
            self.backend(decoy=pending.decoy).cancel(pending.request_id)
        except VerificationError:
            # Refused (the first 30 s, after the second event), already
            # over, or the provider unreachable: forgotten here all the same.
            return False
        return True

    def abandon(self) -> None:
        """Cancel the pending verification: nobody will type its code now.

        The person logs out or in another way; cancelled upstream, the
        provider stops its workflow (no call follows the unused SMS).
        """
        pending = self.pending()
        if pending is None:
            return
        self.storage.clear()
        self._record_step(pending, Outcome.CANCELLED, detail="abandoned")
        self._cancel_quietly(pending)

    def _cancel_quietly(self, pending: PendingVerification) -> None:
        """Cancel a request nobody waits for any more, upstream where the provider allows it."""
        live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)
        with contextlib.suppress(VerificationError):
            self.backend(decoy=pending.decoy).cancel(pending.request_id)

    def _forget(self, pending: PendingVerification) -> None:
        self.storage.clear()
        live_request_end(pending.number, decoy=pending.decoy, request_id=pending.request_id)

    # Operators ---------------------------------------------------------------

    def search(self, request_id: str) -> SearchResult:
        """Return what the provider knows of `request_id` (for operators)."""
        return self.provider.search(request_id)

    # The record --------------------------------------------------------------

    def _detail(self, action: str, status: str = "") -> str:
        """Word an event's detail: an operator's names the command's action."""
        if self.operator:
            return f"{action} {status}".strip()
        return status

    @staticmethod
    def _event_fields(pending: PendingVerification) -> dict:
        return {"purpose": pending.purpose, "number": pending.number, "user_id": pending.user_id}

    def _record(self, outcome: str, event: dict, **extra) -> None:
        verification_event(self.request, outcome=outcome, **event, **extra)

    def _record_step(self, pending: PendingVerification, outcome: str, **extra) -> None:
        verification_event(
            self.request,
            outcome=outcome,
            purpose=pending.purpose,
            number=pending.number,
            request_id="" if pending.decoy else pending.request_id,
            user_id=pending.user_id,
            backend="" if pending.decoy else self.provider.name,
            **extra,
        )


def _verified_detail(holder: str) -> str:
    """Name who typed an accepted code in its log row, without keeping their session key."""
    # The module's path before the split, so that a holder keeps the same name in the log.
    return "by " + salted_hmac("accounts.process", holder, algorithm="sha256").hexdigest()[:24]


def resend_wait(sent_at: float) -> int:
    """Return the seconds until a new code or a call may follow a send at `sent_at` (0: now)."""
    return max(0, math.ceil(sent_at + settings.VERIFY_RESEND_COOLDOWN - time.time()))


def calls_possible() -> bool:
    """Whether the provider can call the person to read out the code ("Call me instead")."""
    return get_backend().supports_next


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
