"""An HTTPS server that speaks Vonage Verify v1 and v2 as their OpenAPI specifications say.

Bodies, statuses and error texts follow ../shared/vonage-openapi/ (v2 errors
are `application/problem+json`; every v1 answer is HTTP 200 with a string
`status`). Where the specification is silent, the choice is written next to
the code: the live `request_id` in v2's 409 (VONAGE.md: "body carries
request_id"), and 404 for a v2 cancel refused in the first 30 seconds (the only
refusal the specification lists for DELETE).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import json
import re
import socket
import ssl
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .rules import LEGACY_DEFAULT_WAITS, LEGACY_WORKFLOWS, Message, Outcome, State, VerifyRules

V2_ERRORS = "https://developer.vonage.com/en/api-errors/verify-v2"
NUMBER_PATTERN = re.compile(r"^[1-9]\d{6,14}$")
V2_CHANNELS = {"sms", "voice", "whatsapp", "email", "silent_auth", "rcs"}
BRAND_FORBIDDEN = re.compile(r"[/{}:$]")

# v1 error texts, from the specification's examples.
LEGACY_TEXTS = {
    "1": "Throttled",
    "2": "Your request is incomplete and missing the mandatory parameter `number`",
    "3": "Invalid value for number",
    "4": "Invalid credentials were provided",
    "5": "Internal Error",
    "6": (
        "The Vonage platform was unable to process this message for the following reason: "
        "The request could not be routed."
    ),
    "7": "The number you are trying to verify is blacklisted for verification.",
    "8": (
        "The api_key you supplied is for an account that has been barred from submitting messages."
    ),
    "9": "Partner quota exceeded",
    "10": "Concurrent verifications to the same number are not allowed",
    "15": "The destination number is not in a supported network",
    "16": "The code inserted does not match the expected value",
    "17": "The wrong code was provided too many times. Request terminated",
    "19": "No more events are left to execute for the request",
    "20": "This account does not support the parameter: pin_code.",
    "29": "Non-Permitted Destination",
    "101": "No response found",
}


class Fault(enum.Enum):
    """What the emulator can do instead of answering as the service would."""

    SERVER_ERROR = "http_500"  # HTTP 500, problem+json (both APIs)
    RATE_LIMITED = "http_429"
    UNAUTHORIZED = "http_401"
    PAYMENT_REQUIRED = "http_402"
    FORBIDDEN = "http_403"
    SERVICE_UNAVAILABLE = "http_503"
    SLOW = "slow"  # hang for `slow_seconds`, then 504: slower than any sane timeout
    DROP = "drop"  # read the request, close the connection without an answer
    REFUSE = "refuse"  # stop listening: connections are refused
    NOT_JSON = "not_json"  # HTTP 200 with an HTML body
    LEGACY_STATUS = "legacy_status"  # v1 answers HTTP 200 with `status=` (any v1 status)


FAULT_STATUS = {
    Fault.SERVER_ERROR: (500, "internal-error", "Internal error"),
    Fault.RATE_LIMITED: (429, "throttled", "Rate Limit Hit"),
    Fault.UNAUTHORIZED: (401, "unauthorized", "Unauthorized"),
    Fault.PAYMENT_REQUIRED: (402, "low-balance", "Low balance"),
    Fault.FORBIDDEN: (403, "forbidden", "Forbidden"),
    Fault.SERVICE_UNAVAILABLE: (503, "service-unavailable", "Service Unavailable"),
}
FAULT_DETAILS = {
    500: "There was an error processing your request in the Platform.",
    429: "Please wait, then retry your request",
    401: "You did not provide correct credentials",
    402: "This request could not be performed due to your account balance being low.",
    403: "Your account does not have permission to perform this action.",
    503: "The service is temporarily unavailable.",
}

# How each API refuses a number it cannot send to: v1 status, and v2 (HTTP status, detail).
NUMBER_REFUSALS = {
    "invalid": ("3", (422, "Invalid phone number")),
    "unroutable": ("6", (422, "The request could not be routed")),
    "blocked": ("7", (422, "The number is blocked for verification")),
    "unsupported_network": ("15", (412, None)),
}


@dataclass
class Response:
    status: int
    body: dict | None = None
    content_type: str = "application/json"
    raw: bytes | None = None
    # "drop" or "slow": what the socket does instead of (or before) answering.
    action: str = ""


@dataclass
class Received:
    """One call as the emulator saw it; never the credentials."""

    method: str
    path: str
    api: str
    operation: str
    auth: str  # "basic", "jwt", "params" or "none"
    params: dict = field(default_factory=dict)


@dataclass
class _ActiveFault:
    fault: Fault
    on: str | None
    remaining: int | None
    status: str | None


class VonageEmulator:
    """Vonage Verify v1 and v2 over HTTPS on 127.0.0.1, with fault switches."""

    def __init__(self, *, ca_bundle: Path, clock=None):
        self.api_key = "emulatorkey"
        self.api_secret = "emulator-secret-Zq81"
        self.application_id = str(uuid.uuid4())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key = key.public_key()
        self._ca = trustme.CA()
        self._ca.cert_pem.write_to_path(str(ca_bundle))
        self.ca_bundle = ca_bundle
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._tls)
        self._lock = threading.RLock()
        self._clock = clock
        self._httpd: _Server | None = None
        self.port = 0
        self.reset()
        self._listen()

    # --- what tests use --------------------------------------------------

    @property
    def host(self) -> str:
        """Return the value for VONAGE_API_HOST."""
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget every request, message, fault and setting: a fresh service."""
        with self._lock:
            self.rules = VerifyRules(clock=self._clock)
            self.received: list[Received] = []
            self.low_balance = False
            self.max_requests_per_second: int | None = None
            self.slow_seconds = 2.0
            self._refused_numbers: dict[str, str] = {}
            self._recent: deque[float] = deque()
        self.heal()

    def advance(self, seconds: float) -> None:
        """Move the service's clock forward (expiry, the 30-second rule, next events)."""
        with self._lock:
            self.rules.advance(seconds)

    @property
    def messages(self) -> list[Message]:
        """Return every message sent, oldest first."""
        with self._lock:
            # Events fall due as the clock moves: send them before anyone looks.
            for verification in list(self.rules.requests.values()):
                self.rules.get(verification.request_id)
            return list(self.rules.messages)

    def last_message(self, number: str) -> Message:
        """Return the last message sent to `number` (E.164, with or without "+")."""
        digits = number.removeprefix("+")
        sent = [message for message in self.messages if message.number == f"+{digits}"]
        if not sent:
            raise AssertionError(f"the emulator sent nothing to {number}")
        return sent[-1]

    def last_code(self, number: str) -> str:
        """Return the code in the last message sent to `number`, as the phone received it."""
        return self.last_message(number).code

    def state_of(self, request_id: str) -> str:
        """Return a request's state as v1's search names it ("IN PROGRESS", "CANCELLED"…)."""
        with self._lock:
            verification = self.rules.get(request_id)
            return verification.state.value if verification else "UNKNOWN"

    def calls(self, operation: str | None = None) -> list[Received]:
        """Return the calls received, or those of one operation ("start", "check"…)."""
        with self._lock:
            return [call for call in self.received if operation in (None, call.operation)]

    def refuse_number(self, number: str, reason: str = "invalid") -> None:
        """Make starts to `number` fail: invalid, unroutable, blocked or unsupported_network."""
        if reason not in NUMBER_REFUSALS:
            raise ValueError(f"reason must be one of {sorted(NUMBER_REFUSALS)}")
        with self._lock:
            self._refused_numbers[number.removeprefix("+")] = reason

    def fail(
        self,
        fault: Fault,
        *,
        on: str | None = None,
        times: int | None = None,
        status: str | None = None,
    ) -> None:
        """Answer with `fault` instead of the service.

        `on` limits it to one operation ("start", "check", "cancel", "next",
        "search"); `times` to that many calls (None: until heal()); `status` is
        the v1 status of Fault.LEGACY_STATUS. A fault is not a processed call:
        the service's state does not change.
        """
        if fault is Fault.REFUSE:
            if on is not None or times is not None:
                raise ValueError("a refused port refuses every call until heal()")
            self._stop_listening()
            return
        if fault is Fault.LEGACY_STATUS and not status:
            raise ValueError("Fault.LEGACY_STATUS needs status=, a v1 status such as '8'")
        with self._lock:
            self._faults.append(_ActiveFault(fault, on, times, status))

    def heal(self) -> None:
        """Clear every fault: listen again, answer at once, as the service would."""
        with self._lock:
            self._faults: list[_ActiveFault] = []
            release = getattr(self, "_release", None)
            self._release = threading.Event()
        if release is not None:
            release.set()  # let hanging SLOW answers go
        if self._httpd is None and self.port:
            self._listen()

    def close(self) -> None:
        """Stop the server for good."""
        self.heal()
        self._stop_listening()

    # --- socket ------------------------------------------------------------

    def _listen(self) -> None:
        httpd = _Server(("127.0.0.1", self.port), _Handler)
        httpd.emulator = self
        httpd.tls = self._tls
        self.port = httpd.server_address[1]
        # A short poll keeps shutdown() (Fault.REFUSE) from waiting half a second.
        serve = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        serve.start()
        self._httpd = httpd

    def _stop_listening(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def wait_slow(self) -> None:
        self._release.wait(self.slow_seconds)

    # --- dispatch ------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers, body: bytes) -> Response:
        """Answer one HTTP request."""
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        with self._lock:
            if path == "/v2/verify" or path.startswith("/v2/verify/"):
                return self._v2(method, path, headers, body)
            if path.startswith("/verify/"):
                params = _form(url.query, body)
                return self._v1(method, path, headers, params)
        return Response(404, {"title": "Not Found"}, "application/problem+json")

    def _fault_for(self, operation: str) -> _ActiveFault | None:
        for active in self._faults:
            if active.on in (None, operation):
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining <= 0:
                        self._faults.remove(active)
                return active
        return None

    def _fault_response(self, active: _ActiveFault, api: str) -> Response:
        fault = active.fault
        if fault is Fault.DROP:
            return Response(0, action="drop")
        if fault is Fault.SLOW:
            return _problem(504, "gateway-timeout", "Gateway Timeout", "No answer in time.", "slow")
        if fault is Fault.NOT_JSON:
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return Response(200, raw=html, content_type="text/html")
        if fault is Fault.LEGACY_STATUS:
            if api == "v1":
                return Response(200, {"status": active.status, "error_text": _text(active.status)})
            return _problem(500, "internal-error", "Internal error", FAULT_DETAILS[500])
        status, fragment, title = FAULT_STATUS[fault]
        return _problem(status, fragment, title, FAULT_DETAILS[status])

    def _throttled(self) -> bool:
        if self.max_requests_per_second is None:
            return False
        now = self.rules.now()
        while self._recent and self._recent[0] <= now - 1:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) > self.max_requests_per_second

    def _basic_ok(self, headers) -> bool | None:
        """Tell whether Basic credentials are right; None when there are none."""
        authorization = headers.get("Authorization", "")
        if not authorization.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, _, secret = decoded.partition(":")
        return hmac.compare_digest(key, self.api_key) and hmac.compare_digest(
            secret, self.api_secret
        )

    # --- Verify v2 -----------------------------------------------------------

    def _v2(self, method: str, path: str, headers, body: bytes) -> Response:
        parts = path.split("/")[3:]  # after /v2/verify
        if method == "POST" and not parts:
            operation = "start"
        elif method == "POST" and len(parts) == 1:
            operation = "check"
        elif method == "DELETE" and len(parts) == 1:
            operation = "cancel"
        elif method == "POST" and len(parts) == 2 and parts[1] == "next_workflow":
            operation = "next"
        else:
            return _problem(404, "request-not-found", "Not Found", "No such resource.")
        request_id = parts[0] if parts else ""
        auth = "jwt" if headers.get("Authorization", "").startswith("Bearer ") else "basic"
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = None
        params = payload if operation == "start" and isinstance(payload, dict) else {}
        self.received.append(Received(method, path, "v2", operation, auth, params))

        active = self._fault_for(operation)
        if active is not None:
            return self._fault_response(active, "v2")
        refused = self._v2_auth(headers)
        if refused is not None:
            return refused
        if self._throttled():
            return _problem(429, "throttled", "Rate Limit Hit", FAULT_DETAILS[429])
        if self.low_balance:
            return _problem(402, "low-balance", "Low balance", FAULT_DETAILS[402])
        if operation == "start":
            return self._v2_start(payload)
        if operation == "check":
            return self._v2_check(request_id, payload)
        if operation == "cancel":
            return self._v2_cancel(request_id)
        return self._v2_next(request_id)

    def _v2_auth(self, headers) -> Response | None:
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            try:
                claims = jwt.decode(
                    authorization[7:],
                    self._public_key,
                    algorithms=["RS256"],
                    options={"require": ["exp", "iat", "jti", "application_id"]},
                )
            except jwt.ExpiredSignatureError:
                return _problem(
                    401,
                    "jwt-expired",
                    "You did not provide correct credentials.",
                    "The JWT provided has expired.",
                    base="https://developer.vonage.com/en/api-errors",
                )
            except jwt.InvalidTokenError:
                claims = {}
            if claims.get("application_id") == self.application_id:
                return None
        elif self._basic_ok(headers):
            return None
        return _problem(
            401,
            "unauthorized",
            "Unauthorized",
            FAULT_DETAILS[401],
            base="https://developer.vonage.com/api-errors",
        )

    def _v2_start(self, payload) -> Response:
        invalid = _v2_invalid_parameters(payload)
        if invalid:
            return _invalid_params(invalid)
        workflow = payload["workflow"]
        number = workflow[0]["to"]
        reason = self._refused_numbers.get(number)
        if reason is not None:
            status, detail = NUMBER_REFUSALS[reason][1]
            if status == 412:
                return _problem(
                    412,
                    "precondition-failed",
                    "Network not supported",
                    "Device number does not resolve to a supported Mobile Network Operator.",
                )
            return _invalid_params([{"name": "workflow[0].to", "reason": detail}])
        channel_timeout = payload.get("channel_timeout", 180)
        outcome, verification = self.rules.start(
            api="v2",
            number=number,
            brand=payload["brand"],
            code_length=payload.get("code_length", 4),
            channels=tuple(step["channel"] for step in workflow),
            waits=(float(channel_timeout),) * (len(workflow) - 1),
            pin_expiry=None,
            channel_timeout=float(channel_timeout),
            new_code_per_event=True,
            params=payload,
        )
        if outcome is Outcome.CONCURRENT:
            return _problem(
                409,
                "concurrent",
                "Conflict",
                "Concurrent verifications to the same number are not allowed.",
                request_id=verification.request_id,
            )
        return Response(202, {"request_id": verification.request_id})

    def _v2_check(self, request_id: str, payload) -> Response:
        code = payload.get("code") if isinstance(payload, dict) else None
        if not isinstance(code, str) or not 4 <= len(code) <= 10:
            return _invalid_code()
        outcome, _verification = self.rules.check(request_id, code)
        if outcome is Outcome.OK:
            return Response(200, {"request_id": request_id, "status": "completed"})
        if outcome is Outcome.WRONG_CODE:
            return _invalid_code()
        if outcome is Outcome.TOO_MANY:
            return _problem(
                410,
                "expired",
                "Invalid Code",
                "An incorrect code has been provided too many times. Workflow terminated.",
            )
        if outcome is Outcome.EXPIRED:
            return _problem(
                410,
                "expired",
                "Invalid Code",
                "The verification request has expired. Workflow terminated.",
            )
        return _not_found(request_id)

    def _v2_cancel(self, request_id: str) -> Response:
        outcome = self.rules.cancel(request_id)
        if outcome is Outcome.OK:
            return Response(204)
        if outcome in (Outcome.TOO_EARLY, Outcome.TOO_LATE):
            # The specification lists only 404 for a refused DELETE.
            when = "within the first 30 seconds" if outcome is Outcome.TOO_EARLY else "now"
            return _problem(
                404,
                "not-found",
                "Not Found",
                f"Verification request ['{request_id}'] can't be cancelled {when}.",
            )
        return _not_found(request_id)

    def _v2_next(self, request_id: str) -> Response:
        outcome = self.rules.next_event(request_id)
        if outcome is Outcome.OK:
            return Response(200, raw=b"", content_type="application/json")
        if outcome is Outcome.NO_MORE_EVENTS:
            return _problem(
                409, "no-events", "Conflict", "There are no more events left to trigger."
            )
        return _not_found(request_id)

    # --- Verify v1 -----------------------------------------------------------

    def _v1(self, method: str, path: str, headers, params: dict) -> Response:
        operations = {
            "/verify/json": "start",
            "/verify/check/json": "check",
            "/verify/search/json": "search",
            "/verify/control/json": "control",
        }
        operation = operations.get(path)
        if operation is None or method not in ("GET", "POST"):
            return Response(404, {"status": "3", "error_text": "Unknown endpoint"})
        if operation == "control":
            operation = {"cancel": "cancel", "trigger_next_event": "next"}.get(
                params.get("cmd", ""), "control"
            )
        basic = self._basic_ok(headers)
        by_params = "api_key" in params
        auth = "basic" if basic is not None else "params" if by_params else "none"
        key, secret = params.pop("api_key", ""), params.pop("api_secret", "")
        recorded = params if operation == "start" else {}
        self.received.append(Received(method, path, "v1", operation, auth, dict(recorded)))

        active = self._fault_for(operation)
        if active is not None:
            return self._fault_response(active, "v1")
        if basic is None:
            basic = hmac.compare_digest(key, self.api_key) and hmac.compare_digest(
                secret, self.api_secret
            )
        if not basic:
            text = (
                "Invalid credentials were provided" if operation == "start" else "Bad credentials"
            )
            return _legacy("4", text)
        if self._throttled():
            return _legacy("1")
        if self.low_balance and operation in ("start", "next"):
            return _legacy("9")
        if operation == "start":
            return self._v1_start(params)
        if operation == "check":
            return self._v1_check(params)
        if operation == "search":
            return self._v1_search(params)
        if operation in ("cancel", "next"):
            return self._v1_control(operation, params)
        return _legacy("3", "Invalid value for param: cmd")

    def _v1_start(self, params: dict) -> Response:
        for name in ("number", "brand"):
            if not params.get(name):
                return _legacy(
                    "2", f"Your request is incomplete and missing the mandatory parameter `{name}`"
                )
        number, brand = params["number"], params["brand"]
        if not NUMBER_PATTERN.match(number):
            return _legacy("3", "Invalid value for number")
        if len(brand) > 18:
            return _legacy("3", "Invalid value for param: brand")
        try:
            code_length = int(params.get("code_length", 4))
            pin_expiry = int(params.get("pin_expiry", 300))
            workflow_id = int(params.get("workflow_id", 1))
            next_event_wait = int(params["next_event_wait"]) if "next_event_wait" in params else 0
        except ValueError:
            return _legacy("3", "Invalid value for param: code_length")
        if code_length not in (4, 6):
            return _legacy("3", "Invalid value for param: code_length")
        if not 60 <= pin_expiry <= 3600:
            return _legacy("3", "Invalid value for param: pin_expiry")
        if workflow_id not in LEGACY_WORKFLOWS:
            return _legacy("3", "Invalid value for param: workflow_id")
        if next_event_wait and not 60 <= next_event_wait <= 900:
            return _legacy("3", "Invalid value for param: next_event_wait")
        if next_event_wait and "pin_expiry" in params and pin_expiry % next_event_wait:
            # The specification: pin_expiry "must be an integer multiple of
            # next_event_wait otherwise pin_expiry is defaulted to equal next_event_wait".
            pin_expiry = next_event_wait
        reason = self._refused_numbers.get(number)
        if reason is not None:
            status = NUMBER_REFUSALS[reason][0]
            extra = {"network": "244523"} if status == "7" else {}
            return _legacy(status, **extra)
        channels = LEGACY_WORKFLOWS[workflow_id]
        waits = (float(next_event_wait),) * 2 if next_event_wait else LEGACY_DEFAULT_WAITS
        outcome, verification = self.rules.start(
            api="v1",
            number=number,
            brand=brand,
            code_length=code_length,
            channels=channels,
            waits=waits[: len(channels) - 1],
            pin_expiry=float(pin_expiry),
            channel_timeout=None,
            new_code_per_event=False,
            params=params,
        )
        if outcome is Outcome.CONCURRENT:
            return _legacy("10", request_id=verification.request_id)
        return Response(200, {"request_id": verification.request_id, "status": "0"})

    def _v1_check(self, params: dict) -> Response:
        request_id, code = params.get("request_id", ""), params.get("code", "")
        if not request_id:
            return _legacy("2", "Missing request_id")
        if not code:
            return _legacy("2", "Missing code")
        if not 4 <= len(code) <= 6:
            return _legacy("3", "Invalid value for param: code", request_id=request_id)
        outcome, verification = self.rules.check(request_id, code)
        if outcome is Outcome.OK:
            return Response(
                200,
                {
                    "request_id": request_id,
                    "event_id": verification.events[-1].event_id,
                    "status": "0",
                    "price": "0.10000000",
                    "currency": "EUR",
                    "estimated_price_messages_sent": "0.03330000",
                },
            )
        if outcome is Outcome.WRONG_CODE:
            return _legacy("16", request_id=request_id)
        if outcome is Outcome.TOO_MANY:
            return _legacy("17", request_id=request_id)
        return _legacy(
            "6",
            "The Vonage platform was unable to process this message for the following reason: "
            f"Request '{request_id}' was not found or it has been verified already.",
            request_id=request_id,
        )

    def _v1_control(self, operation: str, params: dict) -> Response:
        request_id = params.get("request_id", "")
        if not request_id:
            return _legacy("2", "Missing request_id")
        cmd = params["cmd"]
        if operation == "cancel":
            outcome = self.rules.cancel(request_id)
        else:
            outcome = self.rules.next_event(request_id)
        if outcome is Outcome.OK:
            return Response(200, {"status": "0", "command": cmd})
        if outcome is Outcome.TOO_EARLY:
            text = f"Verification request ['{request_id}'] can't be cancelled within the first "
            return _legacy("19", text + "30 seconds.")
        if outcome is Outcome.TOO_LATE:
            return _legacy(
                "19",
                f"Verification request  ['{request_id}'] can't be cancelled now. Too many "
                "attempts to re-deliver have already been made.",
            )
        if outcome is Outcome.NO_MORE_EVENTS:
            return _legacy(
                "19", f"No more events are left to execute for the request ['{request_id}']"
            )
        return _legacy("6", f"The requestId '{request_id}' does not exist or its no longer active.")

    def _v1_search(self, params: dict) -> Response:
        ids = params.get("request_ids") or (
            [params["request_id"]] if "request_id" in params else []
        )
        if not ids:
            return _legacy("2", "Missing request_id")
        found = [self.rules.get(request_id) for request_id in ids[:10]]
        found = [verification for verification in found if verification is not None]
        if not found:
            return Response(
                200, {"request_id": "", "status": "101", "error_text": "No response found"}
            )
        if "request_ids" in params:
            return Response(200, {"verification_requests": [_search_entry(v) for v in found]})
        return Response(200, _search_entry(found[0]))


# --- wire helpers -----------------------------------------------------------


def _form(query: str, body: bytes) -> dict:
    """Merge v1's query string and form body; request_ids stays a list."""
    merged = {}
    for source in (query, body.decode("utf-8", "replace")):
        for name, values in parse_qs(source, keep_blank_values=True).items():
            merged[name] = values if name == "request_ids" else values[-1]
    return merged


def _text(status: str) -> str:
    return LEGACY_TEXTS.get(status, "Error")


def _legacy(status: str, text: str | None = None, **extra) -> Response:
    return Response(200, {**extra, "status": status, "error_text": text or _text(status)})


def _problem(status, fragment, title, detail, action="", *, base=V2_ERRORS, **extra) -> Response:
    body = {
        "type": f"{base}#{fragment}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }
    return Response(status, body, "application/problem+json", action=action)


def _invalid_code() -> Response:
    return _problem(
        400,
        "invalid-code",
        "Invalid Code",
        "The code you provided does not match the expected value.",
    )


def _not_found(request_id: str) -> Response:
    return _problem(
        404,
        "request-not-found",
        "Not Found",
        f"Request '{request_id}' was not found or it has been verified already.",
    )


def _invalid_params(invalid: list[dict]) -> Response:
    return _problem(
        422,
        "invalid-params",
        "Invalid params",
        "The value of one or more parameters is invalid.",
        base="https://developer.vonage.com/en/api-errors",
        invalid_parameters=invalid,
    )


def _v2_invalid_parameters(payload) -> list[dict]:
    """Return what the specification refuses in a v2 start body."""
    if not isinstance(payload, dict):
        return [{"name": "body", "reason": "Body must be a JSON object"}]
    invalid = []
    brand = payload.get("brand")
    if not isinstance(brand, str) or not 1 <= len(brand) <= 18 or BRAND_FORBIDDEN.search(brand):
        invalid.append({"name": "brand", "reason": "Brand is required, 1 to 18 characters"})
    workflow = payload.get("workflow")
    if not isinstance(workflow, list) or not 1 <= len(workflow) <= 3:
        invalid.append({"name": "workflow", "reason": "Workflow must have 1 to 3 steps"})
    else:
        for index, step in enumerate(workflow):
            if not isinstance(step, dict) or step.get("channel") not in V2_CHANNELS:
                invalid.append({"name": f"workflow[{index}].channel", "reason": "Invalid channel"})
            elif not NUMBER_PATTERN.match(str(step.get("to", ""))):
                invalid.append({"name": f"workflow[{index}].to", "reason": "Invalid phone number"})
    ranges = {"code_length": (4, 10), "channel_timeout": (15, 900)}
    for name, (low, high) in ranges.items():
        value = payload.get(name, low)
        if not isinstance(value, int) or not low <= value <= high:
            invalid.append({"name": name, "reason": f"Must be between {low} and {high}"})
    return invalid


def _legacy_date(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _search_entry(verification) -> dict:
    events = verification.events
    return {
        "request_id": verification.request_id,
        "account_id": "abcdef01",
        "number": verification.number,
        "sender_id": "verify",
        "date_submitted": _legacy_date(verification.submitted_at),
        "date_finalized": _legacy_date(verification.finalized_at),
        "checks": [
            {
                "date_received": _legacy_date(check["at"]),
                "code": check["code"],
                "status": check["status"],
                "ip_address": "",
            }
            for check in verification.checks
        ],
        "first_event_date": _legacy_date(events[0].at) if events else None,
        "last_event_date": _legacy_date(events[-1].at) if events else None,
        "price": "0.10000000" if verification.state is State.SUCCESS else "0.00000000",
        "currency": "EUR",
        "status": verification.state.value,
        "estimated_price_messages_sent": "0.03330000",
        "events": [
            {"id": event.event_id, "type": "tts" if event.channel == "voice" else "sms"}
            for event in events
        ],
    }


# --- HTTP ---------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops simultaneous connections,
    # which the client sees as a timeout.
    request_queue_size = 128
    emulator: VonageEmulator
    tls: ssl.SSLContext

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, so a
        # slow or failing client never holds up the accept loop.
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, dropped connection) is not an error here.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "VonageEmulator/1.0"

    def log_message(self, format, *args):
        # Silent: a request line is no use to a test, and logs are asserted clean.
        pass

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        response = emulator.dispatch(self.command, self.path, self.headers, body)
        if response.action == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if response.action == "slow":
            emulator.wait_slow()
        if response.raw is not None:
            payload = response.raw
        elif response.body is not None:
            payload = json.dumps(response.body).encode()
        else:
            payload = b""
        self.send_response(response.status)
        if payload or response.status != 204:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_DELETE = do_GET
