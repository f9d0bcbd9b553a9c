"""Development backend: the SMS is a line printed in the server's terminal."""

from __future__ import annotations

import sys
import threading

from accounts.phone import mask_phone_number

from .local import LocalCodeBackend


class VerificationBackend(LocalCodeBackend):
    """Print each message, worded as Vonage words its SMS, to a stream (stdout)."""

    def __init__(self, *, stream=None, **kwargs):
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.RLock()

    def deliver(self, number, message, *, channel, code):
        # The number is masked like everywhere else; the code is the point of
        # this backend and is printed, for development only.
        with self._lock:
            self.stream.write(f"[{channel} to {mask_phone_number(number)}] {message}\n")
            self.stream.flush()
