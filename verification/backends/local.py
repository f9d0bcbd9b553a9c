"""Codes generated and checked by this server, for development and tests.

The console and locmem backends build on this class and differ only in how
they deliver the message. Codes come from `secrets`, are stored hashed (keyed
with SECRET_KEY) in the default cache, which every process of the site shares,
and follow Vonage's rules: a code lives VERIFY_CODE_TTL seconds, three wrong
codes kill the request, and one request per number is live at a time.

Checks that arrive together are counted exactly on every cache the site runs
on (Redis, Memcached, the database cache, LocMem): each check first takes one
of the request's three attempts with `cache.add`, the one operation every
cache does atomically, so no two checks get the same attempt and a fourth
finds none left.
"""

from __future__ import annotations

import contextlib
import secrets
import time

from django.core.cache import caches
from django.utils.crypto import constant_time_compare, salted_hmac

from ..exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    TooManyAttempts,
    VerificationExpired,
)
from .base import BaseVerificationBackend, CheckResult

MAX_WRONG_CODES = 3


class LocalCodeBackend(BaseVerificationBackend):
    """Generate codes here; subclasses override deliver()."""

    supports_next = True
    next_events = 1
    request_id_prefix = ""
    # Cache keys: requests of different subclasses never see each other.
    key_prefix = "verification:local"

    def __init__(
        self,
        *,
        cache_alias="default",
        next_events=None,
        cancel_not_before=None,
        cancel_refused_after_next=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cache = caches[cache_alias]
        if cancel_refused_after_next is not None:
            self.cancel_refused_after_next = cancel_refused_after_next
        if next_events is not None:
            self.next_events = next_events
            self.supports_next = next_events > 0
        if cancel_not_before is not None:
            self.cancel_not_before = cancel_not_before

    def deliver(self, number: str, message: str, *, channel: str, code: str) -> None:
        """Send `message` to `number` over `channel` ("sms" or "voice")."""
        raise NotImplementedError("subclasses of LocalCodeBackend must override deliver()")

    def message(self, code: str) -> str:
        minutes = max(1, self.code_ttl // 60)
        return f"{self.brand} code: {code}. Valid for {minutes} minutes."

    def generate_code(self, number: str) -> str:
        """Return a new random code of `code_length` digits."""
        return "".join(secrets.choice("0123456789") for _ in range(self.code_length))

    def start(self, number: str) -> str:
        request_id = self.request_id_prefix + secrets.token_hex(16)
        # add() is atomic in every shared cache: of two starts racing for one
        # number, one wins and the other sees the live request.
        if not self.cache.add(self._number_key(number), request_id, self.code_ttl):
            live = self.cache.get(self._number_key(number))
            if live and self._load(live) is not None:
                raise ConcurrentVerification("a request to this number is live", request_id=live)
            self.cache.set(self._number_key(number), request_id, self.code_ttl)
        self._send_code(request_id, number, channel="sms", expires_at=time.time() + self.code_ttl)
        return request_id

    def check(self, request_id: str, code: str) -> CheckResult:
        record = self._load(request_id)
        if record is None:
            raise VerificationExpired("no live request", request_id=request_id)
        # The attempt is taken before the code is compared: however many
        # checks arrive together, at most MAX_WRONG_CODES codes are compared.
        attempt = self._take_attempt(request_id)
        if attempt is None:
            # Checks running at this moment took every attempt, and the one
            # that took the last ends the request: this check comes after it.
            raise VerificationExpired("no attempts left", request_id=request_id)
        # A call reads out a new code; the SMS code sent before it still works,
        # as a person who gets both would expect.
        digest = self._hash(request_id, code)
        if any(constant_time_compare(digest, known) for known in record["code_hashes"]):
            # delete() reports whether this call removed the key: of two
            # checks racing with the right code, exactly one succeeds.
            if not self.cache.delete(self._request_key(request_id)):
                raise VerificationExpired("already verified", request_id=request_id)
            self._forget(record["number"])
            return CheckResult(request_id=request_id)
        if attempt >= MAX_WRONG_CODES:
            self.cache.delete(self._request_key(request_id))
            self._forget(record["number"])
            raise TooManyAttempts("wrong code too many times", request_id=request_id)
        raise IncorrectCode(
            "wrong code", attempts_left=MAX_WRONG_CODES - attempt, request_id=request_id
        )

    def _take_attempt(self, request_id: str) -> int | None:
        """Take the first free attempt of the request (1 to MAX_WRONG_CODES); None when none is.

        One key per attempt, claimed with add(): of two checks racing for an
        attempt, exactly one gets it. The keys are never deleted early, so a
        check still running when the request ends cannot find a fresh count
        at zero; they expire with the code, and a request id is never reused.
        """
        for attempt in range(1, MAX_WRONG_CODES + 1):
            if self.cache.add(self._attempt_key(request_id, attempt), True, self.code_ttl):
                return attempt
        return None

    def cancel(self, request_id: str) -> None:
        record = self._load(request_id)
        if record is None:
            raise VerificationExpired("no live request", request_id=request_id)
        if time.time() < record["started_at"] + self.cancel_not_before:
            raise ActionNotAllowed("too early to cancel", request_id=request_id)
        if self.cancel_refused_after_next and record["calls"]:
            raise ActionNotAllowed("too late to cancel", request_id=request_id)
        self.cache.delete(self._request_key(request_id))
        self._forget(record["number"])

    def trigger_next(self, request_id: str) -> None:
        # Like Vonage's workflow: `next_events` calls after the SMS, then nothing.
        record = self._load(request_id)
        if record is None:
            raise VerificationExpired("no live request", request_id=request_id)
        if record["calls"] >= self.next_events:
            raise ActionNotAllowed("no more events", request_id=request_id)
        self._send_code(
            request_id,
            record["number"],
            channel="voice",
            expires_at=record["expires_at"],
            earlier=record["code_hashes"],
            started_at=record["started_at"],
            calls=record["calls"] + 1,
        )

    def _send_code(
        self, request_id, number, *, channel, expires_at, earlier=(), started_at=None, calls=0
    ):
        code = self.generate_code(number)
        record = {
            "number": number,
            "code_hashes": [*earlier, self._hash(request_id, code)],
            "channel": channel,
            "expires_at": expires_at,
            "started_at": started_at or time.time(),
            "calls": calls,
        }
        self.cache.set(self._request_key(request_id), record, max(1, int(expires_at - time.time())))
        self.deliver(number, self.message(code), channel=channel, code=code)

    def _load(self, request_id):
        record = self.cache.get(self._request_key(request_id))
        if record is None or record["expires_at"] <= time.time():
            return None
        return record

    def _forget(self, number):
        # Called once this request's record is deleted: the number is free
        # again. A newer request can hold the number only if it started after
        # that deletion, microseconds ago; checking first would cost a round
        # trip on every login to narrow, not close, that window, whose worst
        # case is two live codes for one number. It runs after the code was
        # taken: a cache outage here must not make a right code an error (the
        # number's key expires with the code anyway).
        with contextlib.suppress(Exception):
            self.cache.delete(self._number_key(number))

    def _hash(self, request_id, code):
        return salted_hmac(self.key_prefix, f"{request_id}:{code}", algorithm="sha256").hexdigest()

    def _request_key(self, request_id):
        return f"{self.key_prefix}:request:{request_id}"

    def _attempt_key(self, request_id, attempt):
        return f"{self.key_prefix}:request:{request_id}:attempt:{attempt}"

    def _number_key(self, number):
        return f"{self.key_prefix}:number:{number}"
