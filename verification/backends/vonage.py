"""Vonage Verify v2: Vonage generates, sends and checks the codes (VERIFY_BACKEND=vonage)."""

from __future__ import annotations

from pydantic import ValidationError
from vonage import Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_utils.errors import VonageError
from vonage_verify import SmsChannel, VerifyRequest, VoiceChannel

from ..exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    TooManyAttempts,
    VerificationError,
    VerificationExpired,
)
from .base import CheckResult
from .vonage_client import (
    VonageBackend,
    forget_wrong_codes,
    json_body,
    setting,
    voice_fallback_seconds,
    wrong_code_attempts_left,
)

# The channels that reach a phone number with nothing else to configure.
CHANNELS = {"sms": SmsChannel, "voice": VoiceChannel}
CHANNEL_TIMEOUT_MIN, CHANNEL_TIMEOUT_MAX = 15, 900


class VerificationBackend(VonageBackend):
    """Send codes with Vonage Verify v2 (the `vonage_verify` SDK package).

    Settings read when the backend is built (a constructor argument of the same
    name, in lower case without the prefix, wins: `api_key=`, `workflow=`…):

    - VONAGE_API_KEY, VONAGE_API_SECRET: Basic auth.
    - VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY (a path or the PEM text): JWT
      auth instead, when both are set.
    - VONAGE_API_HOST: e.g. api-eu.vonage.com; empty for the SDK's default.
    - VONAGE_TIMEOUT: seconds to wait for each call.
    - VERIFY_BRAND: the name in the message (the SDK allows 16 characters).
    - VERIFY_WORKFLOW: channels in order, from CHANNELS ("sms", "voice").
    - VERIFY_CODE_LENGTH: digits per code, 4 to 10.
    - VERIFY_CODE_TTL: `channel_timeout` of a one-channel workflow, clamped to
      15-900 seconds.
    - VERIFY_VOICE_FALLBACK_AFTER: with a next channel, its `channel_timeout`
      (15-900 seconds): Vonage moves on to the call by itself when the code is
      not used by then. 0 (the default): `channel_timeout` is 900, the most
      Vonage takes, so the call only comes when the person asks for it ("Call
      me instead") and the site cancels a request it stops waiting for first.
    - VERIFY_LOCALE: message language (e.g. "en-gb"); empty for Vonage's default.
    - VERIFY_MAX_WRONG_CODES: to tell the person how many attempts remain.
    """

    def __init__(
        self,
        *,
        workflow: list[str] | None = None,
        locale: str | None = None,
        voice_fallback_after: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        channels = setting(workflow, "VERIFY_WORKFLOW")
        if isinstance(channels, str):
            channels = channels.split(",")
        self.workflow = tuple(channel.strip().lower() for channel in channels if channel.strip())
        self.locale = setting(locale, "VERIFY_LOCALE")
        self.voice_fallback_after = voice_fallback_seconds(voice_fallback_after)
        # "Call me instead" needs a channel after the first one.
        self.next_events = max(0, len(self.workflow) - 1)
        self.supports_next = self.next_events > 0
        self.channel_timeout = self._channel_timeout()

    def _channel_timeout(self) -> int:
        """Return the seconds Vonage waits on each channel before it moves on by itself."""
        if not self.next_events:
            # Nothing to move on to: the request ends when the code does.
            seconds = int(self.code_ttl)
        elif self.voice_fallback_after:
            seconds = self.voice_fallback_after
        else:
            # Vonage has no "only on request": the longest wait keeps the call
            # for "Call me instead" until well after the code is dead on the
            # site (VERIFY_CODE_TTL, 10 minutes at most), which cancels a
            # request it no longer waits for.
            seconds = CHANNEL_TIMEOUT_MAX
        return min(CHANNEL_TIMEOUT_MAX, max(CHANNEL_TIMEOUT_MIN, seconds))

    def credentials_missing(self) -> str | None:
        if self.config.uses_jwt or self.config.has_basic_credentials:
            return None
        return (
            "VONAGE_API_KEY and VONAGE_API_SECRET (or VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY)"
        )

    def start(self, number: str) -> str:
        context = {"number": number}
        request = self._verify_request(number, context)
        response = self.call(
            "start", lambda client: client.verify.start_verification(request), **context
        )
        return response.request_id

    def _verify_request(self, number: str, context: dict) -> VerifyRequest:
        # The SDK wants E.164 digits without the "+".
        to = number.removeprefix("+")
        try:
            workflow = [CHANNELS[channel](to=to) for channel in self.workflow]
        except ValidationError as exc:
            raise InvalidNumber("the number is not one Vonage can take") from exc
        except KeyError as exc:
            raise self.configuration_error("start", ValueError("VERIFY_WORKFLOW"), context) from exc
        try:
            return VerifyRequest(
                brand=self.brand,
                workflow=workflow,
                code_length=self.code_length,
                channel_timeout=self.channel_timeout,
                locale=self.locale or None,
            )
        except (ValidationError, VonageError) as exc:
            raise self.configuration_error("start", exc, context) from exc

    def check(self, request_id: str, code: str) -> CheckResult:
        response = self.call(
            "check",
            lambda client: client.verify.check_code(request_id, code),
            request_id=request_id,
        )
        forget_wrong_codes(request_id)
        # Verify v2 reports no event id or price on a check.
        return CheckResult(request_id=response.request_id or request_id)

    def cancel(self, request_id: str) -> None:
        self.call(
            "cancel",
            lambda client: client.verify.cancel_verification(request_id),
            request_id=request_id,
        )
        forget_wrong_codes(request_id)

    def trigger_next(self, request_id: str) -> None:
        self.call(
            "next",
            lambda client: client.verify.trigger_next_workflow(request_id),
            request_id=request_id,
        )

    def translate(
        self, action: str, exc: VonageError, client: Vonage, context: dict
    ) -> VerificationError | None:
        if not isinstance(exc, HttpRequestError):
            return None
        common = self.http_error(action, exc, context)
        if common is not None:
            return common
        status = exc.response.status_code
        problem = json_body(exc.response)
        request_id = context.get("request_id")
        if action == "start":
            if status == 409:
                # The body names the live request: the flow keeps using it when
                # this session started it.
                live = problem.get("request_id") or None
                return ConcurrentVerification("a request to this number is live", request_id=live)
            if status == 412 or (status == 422 and _names_the_number(problem)):
                return InvalidNumber("Vonage cannot send to this number")
        elif action == "check":
            if status == 400:
                left = wrong_code_attempts_left(request_id)
                return IncorrectCode("wrong code", attempts_left=left, request_id=request_id)
            if status in (404, 410):
                forget_wrong_codes(request_id)
            if status == 404:
                return VerificationExpired("not found or already verified", request_id=request_id)
            if status == 409:
                return ActionNotAllowed("the current step takes no code", request_id=request_id)
            if status == 410:
                # One status for both ends of a request; only the detail tells
                # the wrong-code kill from the clock.
                if "too many" in str(problem.get("detail", "")).lower():
                    return TooManyAttempts("wrong code too many times", request_id=request_id)
                return VerificationExpired("expired", request_id=request_id)
        elif action == "cancel" and status == 404:
            # 404 is also how Vonage refuses a cancel in the first 30 seconds or
            # after the second event; only `request-not-found` means it is gone.
            if _problem_type(problem) == "request-not-found":
                return VerificationExpired("not found", request_id=request_id)
            return ActionNotAllowed("cannot be cancelled now", request_id=request_id)
        elif action == "next":
            if status == 404:
                return VerificationExpired("not found", request_id=request_id)
            if status == 409:
                return ActionNotAllowed("no next channel now", request_id=request_id)
        return None


def _problem_type(problem: dict) -> str:
    """Return the fragment of a problem's `type` URL ("request-not-found"), or ""."""
    return str(problem.get("type", "")).rpartition("#")[2]


def _names_the_number(problem: dict) -> bool:
    """Tell whether a 422 is about the number ("to", "workflow[0].to") rather than settings."""
    for parameter in problem.get("invalid_parameters") or []:
        name = str(parameter.get("name", "")) if isinstance(parameter, dict) else ""
        if name.rpartition(".")[2].split("[")[0] in ("to", "number"):
            return True
    return False
