"""A verification backend that records every upstream call and fails on demand.

The locmem backend keeps what was "sent" in `verification.outbox`;
this one also keeps every call made upstream (start, check, cancel,
trigger_next) so a test can count the guesses that reached the provider, and
can make any call slow or raise the provider outcome a real provider would.
State lives on the class because the flows build a backend per call; the
`upstream` fixture resets it for every test.
"""

from __future__ import annotations

import threading
import time

from verification.backends import locmem


class VerificationBackend(locmem.VerificationBackend):
    """The locmem backend, observed: `calls`, and `faults` / `latency` per method name."""

    calls: list[tuple[str, str]] = []
    # Every request id the provider handed out.
    issued: list[str] = []
    # Method name -> exception instance raised instead of the call.
    faults: dict[str, Exception] = {}
    # Method name -> seconds the provider takes to answer.
    latency: dict[str, float] = {}
    _lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.calls = []
        cls.issued = []
        cls.faults = {}
        cls.latency = {}

    @classmethod
    def count(cls, method: str) -> int:
        """Return how many times `method` was called upstream."""
        return sum(1 for name, _ in cls.calls if name == method)

    def _upstream(self, method: str, argument: str) -> None:
        with self._lock:
            self.calls.append((method, argument))
        if self.latency.get(method):
            time.sleep(self.latency[method])
        fault = self.faults.get(method)
        if fault is not None:
            raise fault

    def start(self, number):
        self._upstream("start", number)
        request_id = super().start(number)
        with self._lock:
            self.issued.append(request_id)
        return request_id

    def check(self, request_id, code):
        self._upstream("check", request_id)
        return super().check(request_id, code)

    def cancel(self, request_id):
        self._upstream("cancel", request_id)
        return super().cancel(request_id)

    def trigger_next(self, request_id):
        self._upstream("trigger_next", request_id)
        return super().trigger_next(request_id)
