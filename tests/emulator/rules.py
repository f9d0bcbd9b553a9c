"""The rules of Vonage Verify that both APIs share, on an injectable clock.

A request sends its first event (an SMS or a call) at once and the next ones
when their wait has passed or when asked to; it ends with a correct code, after
MAX_WRONG_CODES wrong ones, at its deadline, or when cancelled (not in its
first CANCEL_AFTER seconds, not after its second event). One request per
number and API is live at a time. The wire formats live in `server.py`.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_WRONG_CODES = 3
CANCEL_AFTER = 30.0

# Verify v1 workflows (VONAGE.md, "Rules of the service"): the channel of each event.
LEGACY_WORKFLOWS = {
    1: ("sms", "voice", "voice"),
    2: ("sms", "sms", "voice"),
    3: ("voice", "voice"),
    4: ("sms", "sms"),
    5: ("sms", "voice"),
    6: ("sms",),
    7: ("voice",),
}
# v1's default timings: the second event after 125 s, the third 180 s later.
LEGACY_DEFAULT_WAITS = (125.0, 180.0)


class State(enum.Enum):
    # The values are v1's search statuses.
    IN_PROGRESS = "IN PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class Outcome(enum.Enum):
    OK = "ok"
    CONCURRENT = "concurrent"
    WRONG_CODE = "wrong_code"
    TOO_MANY = "too_many"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    NO_MORE_EVENTS = "no_more_events"


@dataclass(frozen=True)
class Message:
    """What a phone receives: the tests read codes here, as a person reads their SMS."""

    number: str  # E.164 with "+"
    channel: str  # "sms" or "voice"
    code: str
    api: str  # "v1" or "v2"
    request_id: str
    event_id: str
    at: float


@dataclass
class Verification:
    request_id: str
    api: str
    number: str  # digits, as sent on the wire
    brand: str
    code_length: int
    channels: tuple[str, ...]
    waits: tuple[float, ...]  # before each event after the first
    submitted_at: float
    # v1: the request ends `pin_expiry` seconds after it started. v2 (None):
    # each channel waits `channel_timeout`, and the request ends after the last.
    pin_expiry: float | None
    channel_timeout: float | None
    new_code_per_event: bool
    params: dict = field(default_factory=dict)
    state: State = State.IN_PROGRESS
    code: str = ""
    events: list[Message] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    wrong: int = 0
    finalized_at: float | None = None

    @property
    def deadline(self) -> float:
        if self.pin_expiry is not None:
            return self.submitted_at + self.pin_expiry
        if len(self.events) < len(self.channels):
            return float("inf")
        return self.events[-1].at + self.channel_timeout

    @property
    def live(self) -> bool:
        return self.state is State.IN_PROGRESS


class VerifyRules:
    """Requests and their codes; not thread-safe (the server holds a lock)."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self.clock = clock or time.time
        self.offset = 0.0
        self.requests: dict[str, Verification] = {}
        self.messages: list[Message] = []

    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def start(self, *, api: str, number: str, **kwargs) -> tuple[Outcome, Verification]:
        live = self.live_for(api, number)
        if live is not None:
            return Outcome.CONCURRENT, live
        now = self.now()
        request_id = uuid.uuid4().hex if api == "v1" else str(uuid.uuid4())
        verification = Verification(
            request_id=request_id, api=api, number=number, submitted_at=now, **kwargs
        )
        self.requests[request_id] = verification
        self._send(verification, at=now)
        return Outcome.OK, verification

    def live_for(self, api: str, number: str) -> Verification | None:
        for verification in self.requests.values():
            if verification.api == api and verification.number == number:
                self._refresh(verification)
                if verification.live:
                    return verification
        return None

    def get(self, request_id: str) -> Verification | None:
        verification = self.requests.get(request_id)
        if verification is not None:
            self._refresh(verification)
        return verification

    def check(self, request_id: str, code: str) -> tuple[Outcome, Verification | None]:
        verification = self.get(request_id)
        if verification is None:
            return Outcome.NOT_FOUND, None
        if verification.state is State.EXPIRED:
            return Outcome.EXPIRED, verification
        if not verification.live:
            return Outcome.NOT_FOUND, verification
        right = hmac.compare_digest(code.encode(), verification.code.encode())
        verification.checks.append(
            {"at": self.now(), "code": code, "status": "VALID" if right else "INVALID"}
        )
        if right:
            self._finish(verification, State.SUCCESS)
            return Outcome.OK, verification
        verification.wrong += 1
        if verification.wrong >= MAX_WRONG_CODES:
            self._finish(verification, State.FAILED)
            return Outcome.TOO_MANY, verification
        return Outcome.WRONG_CODE, verification

    def cancel(self, request_id: str) -> Outcome:
        verification = self.get(request_id)
        if verification is None or not verification.live:
            return Outcome.NOT_FOUND
        if self.now() - verification.submitted_at < CANCEL_AFTER:
            return Outcome.TOO_EARLY
        if len(verification.events) >= 2:
            return Outcome.TOO_LATE
        self._finish(verification, State.CANCELLED)
        return Outcome.OK

    def next_event(self, request_id: str) -> Outcome:
        verification = self.get(request_id)
        if verification is None or not verification.live:
            return Outcome.NOT_FOUND
        if len(verification.events) >= len(verification.channels):
            return Outcome.NO_MORE_EVENTS
        self._send(verification, at=self.now())
        return Outcome.OK

    def _refresh(self, verification: Verification) -> None:
        """Send the events whose time has come, and end the request at its deadline."""
        if not verification.live:
            return
        now = self.now()
        while len(verification.events) < len(verification.channels):
            due = verification.events[-1].at + verification.waits[len(verification.events) - 1]
            if due > now or due >= verification.deadline:
                break
            self._send(verification, at=due)
        if now >= verification.deadline:
            verification.state = State.EXPIRED
            verification.finalized_at = verification.deadline

    def _send(self, verification: Verification, *, at: float) -> None:
        if not verification.code or verification.new_code_per_event:
            verification.code = "".join(
                secrets.choice("0123456789") for _ in range(verification.code_length)
            )
        message = Message(
            number=f"+{verification.number}",
            channel=verification.channels[len(verification.events)],
            code=verification.code,
            api=verification.api,
            request_id=verification.request_id,
            event_id=secrets.token_hex(8).upper(),
            at=at,
        )
        verification.events.append(message)
        self.messages.append(message)

    def _finish(self, verification: Verification, state: State) -> None:
        verification.state = state
        verification.finalized_at = self.now()
