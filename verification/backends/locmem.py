"""Test backend: messages go to `verification.outbox`, like `mail.outbox`."""

from __future__ import annotations

from dataclasses import dataclass

import verification

from .local import LocalCodeBackend


@dataclass(frozen=True)
class SentMessage:
    number: str
    message: str
    channel: str
    code: str


class VerificationBackend(LocalCodeBackend):
    """Keep every message in memory, for tests to read the code."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(verification, "outbox"):
            verification.outbox = []

    def deliver(self, number, message, *, channel, code):
        verification.outbox.append(
            SentMessage(number=number, message=message, channel=channel, code=code)
        )
