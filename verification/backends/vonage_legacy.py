"""Vonage Verify v1, the legacy API: Vonage generates, sends and checks the codes.

VERIFY_BACKEND=vonage-legacy. Every answer is HTTP 200 with a string `status`
("0" is success); the SDK raises VerifyError for any other status, and the
structured body is the thread's client's `last_response`.
"""

from __future__ import annotations

import dataclasses
import logging

from pydantic import ValidationError
from vonage import Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_utils.errors import VonageError
from vonage_verify_legacy import VerifyError, VerifyRequest

from ..exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    TooManyAttempts,
    VerificationError,
    VerificationExpired,
)
from .base import CheckResult, SearchResult
from .vonage_client import (
    VonageBackend,
    describe,
    forget_wrong_codes,
    json_body,
    setting,
    upstream_id,
    voice_fallback_seconds,
    wrong_code_attempts_left,
)

logger = logging.getLogger("verification.vonage")

# Events after the first, per workflow (1: SMS, call, call; 6: SMS only…):
# what trigger_next may move a request on to.
NEXT_EVENTS = {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 0, 7: 0}
# What v1 takes for `next_event_wait`, the seconds before it moves on by itself.
NEXT_EVENT_WAIT_MIN, NEXT_EVENT_WAIT_MAX = 60, 900
# Statuses only the operator can fix: credentials, account, settings.
OPERATOR_STATUSES = {
    "2": "missing parameter",
    "3": "invalid parameter",
    "4": "invalid credentials",
    "8": "account barred",
    "9": "partner quota exceeded (no credit)",
    "20": "custom PIN not allowed",
    "29": "non-permitted destination (demo account)",
}


class VerificationBackend(VonageBackend):
    """Send codes with Vonage Verify v1 (the `vonage_verify_legacy` SDK package).

    Settings read when the backend is built (a constructor argument of the same
    name, in lower case without the prefix, wins: `api_key=`, `workflow_id=`…):

    - VONAGE_API_KEY, VONAGE_API_SECRET: Basic auth (the only auth v1 takes).
    - VONAGE_API_HOST: e.g. api-eu.vonage.com; empty for the SDK's default.
    - VONAGE_TIMEOUT: seconds to wait for each call.
    - VERIFY_BRAND: the name in the message (18 characters at most).
    - VERIFY_CODE_LENGTH: 4 or 6, all this API takes.
    - VERIFY_CODE_TTL: `pin_expiry`, seconds a code lives, as far as v1 allows
      (below).
    - VERIFY_VOICE_FALLBACK_AFTER: `next_event_wait` (60-900 seconds): Vonage
      moves on to the next event (a call) by itself when the code is not used
      by then. 0 (the default): `next_event_wait` is 900, the most v1 takes,
      so the call only comes when the person asks for it ("Call me instead")
      and the site cancels a request it stops waiting for first.
    - VERIFY_LEGACY_WORKFLOW_ID: 1 (SMS, voice, voice) to 7; 6 and 7 have no next event.
    - VERIFY_LOCALE: `lg`, the message language; empty for Vonage's default.
    - VERIFY_MAX_WRONG_CODES: to tell the person how many attempts remain.
    """

    supports_search = True

    def __init__(
        self,
        *,
        workflow_id: int | None = None,
        locale: str | None = None,
        voice_fallback_after: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # v1 knows no JWT: a client without the application keeps the key unread.
        self.config = dataclasses.replace(self.config, application_id="", private_key="")
        self.workflow_id = int(setting(workflow_id, "VERIFY_LEGACY_WORKFLOW_ID"))
        self.locale = setting(locale, "VERIFY_LOCALE")
        self.next_events = NEXT_EVENTS.get(self.workflow_id, 1)
        self.supports_next = self.next_events > 0
        self.voice_fallback_after = voice_fallback_seconds(voice_fallback_after)
        self.next_event_wait, self.pin_expiry = self._timings()

    def _timings(self) -> tuple[int | None, int]:
        """Return `next_event_wait` (None: not sent) and `pin_expiry` for a start.

        v1 takes a `pin_expiry` only when it is a multiple of `next_event_wait`
        (otherwise it makes it equal to the wait), so the code lives the longest
        multiple of the wait within VERIFY_CODE_TTL, or one wait when the wait
        is longer; the site ends the code at VERIFY_CODE_TTL whatever Vonage
        allows.
        """
        ttl = int(self.code_ttl)
        if not self.next_events:
            return None, ttl
        if self.voice_fallback_after:
            wait = min(NEXT_EVENT_WAIT_MAX, max(NEXT_EVENT_WAIT_MIN, self.voice_fallback_after))
        else:
            # v1 has no "only on request": the longest wait keeps the call for
            # "Call me instead" until well after the code is dead on the site
            # (VERIFY_CODE_TTL, 10 minutes at most), which cancels a request it
            # no longer waits for.
            wait = NEXT_EVENT_WAIT_MAX
        return wait, max(1, ttl // wait) * wait

    def credentials_missing(self) -> str | None:
        return None if self.config.has_basic_credentials else "VONAGE_API_KEY and VONAGE_API_SECRET"

    def start(self, number: str) -> str:
        context = {"number": number}
        request = self._verify_request(number, context)
        response = self.call(
            "start", lambda client: client.verify_legacy.start_verification(request), **context
        )
        return response.request_id

    def _verify_request(self, number: str, context: dict) -> VerifyRequest:
        try:
            return VerifyRequest(
                # E.164 digits without the "+", as the SDK wants.
                number=number.removeprefix("+"),
                brand=self.brand,
                code_length=self.code_length,
                pin_expiry=self.pin_expiry,
                next_event_wait=self.next_event_wait,
                workflow_id=self.workflow_id,
                lg=self.locale or None,
            )
        except ValidationError as exc:
            if any(error["loc"][:1] == ("number",) for error in exc.errors()):
                raise InvalidNumber("the number is not one Vonage can take") from exc
            raise self.configuration_error("start", exc, context) from exc

    def check(self, request_id: str, code: str) -> CheckResult:
        response = self.call(
            "check",
            lambda client: client.verify_legacy.check_code(request_id, code),
            request_id=request_id,
        )
        forget_wrong_codes(request_id)
        return CheckResult(
            request_id=response.request_id or request_id,
            event_id=response.event_id or None,
            price=response.price or None,
            currency=response.currency or None,
        )

    def cancel(self, request_id: str) -> None:
        self.call(
            "cancel",
            lambda client: client.verify_legacy.cancel_verification(request_id),
            request_id=request_id,
        )
        forget_wrong_codes(request_id)

    def trigger_next(self, request_id: str) -> None:
        self.call(
            "next",
            lambda client: client.verify_legacy.trigger_next_event(request_id),
            request_id=request_id,
        )

    def search(self, request_id: str) -> SearchResult:
        found = self.call(
            "search",
            lambda client: client.verify_legacy.search(request_id),
            request_id=request_id,
        )
        # The checks are left out: they hold the codes people typed.
        return SearchResult(
            request_id=found.request_id or request_id,
            status=found.status or "",
            number=found.number,
            price=found.price,
            currency=found.currency,
            events=[{"type": event.type, "id": event.id} for event in found.events or []],
        )

    def translate(
        self, action: str, exc: VonageError, client: Vonage, context: dict
    ) -> VerificationError | None:
        if isinstance(exc, HttpRequestError):
            # v1 answers 200; another status comes from the gateway in front.
            return self.http_error(action, exc, context)
        if not isinstance(exc, VerifyError):
            return None
        # This thread's client made the call, so its last response is this answer.
        body = json_body(client.http_client.last_response)
        status = str(body.get("status", ""))
        text = str(body.get("error_text", ""))
        request_id = context.get("request_id")
        context = {**context, "status": status, "upstream_id": upstream_id(body)}
        if status == "1":
            logger.warning("%s %s throttled by Vonage (status 1)", self.label, action)
            return Throttled("throttled")
        if status == "5":
            self.log_unavailable(action, "internal error at Vonage", context)
            return ProviderUnavailable("internal error")
        if action == "start":
            if status == "10":
                live = body.get("request_id") or None
                return ConcurrentVerification("a request to this number is live", request_id=live)
            if status == "7":
                # Anti-fraud blocks whole networks when conversion looks like
                # SMS pumping: the operator must hear of it.
                logger.warning(
                    "%s start refused: number blocked by Vonage (network %s)%s",
                    self.label,
                    _network(body),
                    describe(context),
                )
                return InvalidNumber("number or network blocked")
            if status in ("6", "15") or (status == "3" and "number" in text.lower()):
                return InvalidNumber("Vonage cannot send to this number")
        if status in OPERATOR_STATUSES:
            self.log_account_problem(action, OPERATOR_STATUSES[status], context, title=text)
            return ProviderUnavailable(OPERATOR_STATUSES[status])
        if action in ("check", "cancel", "next", "search") and status in ("6", "101"):
            forget_wrong_codes(request_id)
            return VerificationExpired("not found or no longer active", request_id=request_id)
        if action == "check" and status == "16":
            attempts_left = wrong_code_attempts_left(request_id)
            return IncorrectCode("wrong code", attempts_left=attempts_left, request_id=request_id)
        if action == "check" and status == "17":
            forget_wrong_codes(request_id)
            return TooManyAttempts("wrong code too many times", request_id=request_id)
        if action in ("cancel", "next") and status == "19":
            return ActionNotAllowed("not possible now", request_id=request_id)
        return None


def _network(body: dict) -> str:
    """Return the blocking network's id, which the operator needs to ask for an unblock."""
    network = str(body.get("network") or "")
    return network if network.isalnum() and len(network) <= 16 else "-"
