"""Test numbers: a fixed code per number and no message, for app-store reviewers and demos.

`get_backend()` wraps the configured backend in TestNumbersBackend when
VERIFY_TEST_NUMBERS is set: the listed numbers are served here, every other
number by the real backend. Each use is logged at WARNING so that an operator
sees when a test number is used.
"""

from __future__ import annotations

import logging

from accounts.phone import mask_phone_number, phone_number_parse

from .base import BaseVerificationBackend, CheckResult, SearchResult
from .local import LocalCodeBackend

logger = logging.getLogger(__name__)

REQUEST_ID_PREFIX = "test-"


class FixedCodeBackend(LocalCodeBackend):
    """Vonage's rules (expiry, 3 wrong codes, one live request) with a known code."""

    request_id_prefix = REQUEST_ID_PREFIX

    def __init__(self, *, codes: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.codes = codes

    def generate_code(self, number: str) -> str:
        return self.codes[number]

    def deliver(self, number, message, *, channel, code):
        logger.warning(
            "test number used: %s gets its fixed code, no %s sent",
            mask_phone_number(number),
            channel,
        )


class TestNumbersBackend(BaseVerificationBackend):
    """Serve the test numbers with their fixed codes and pass every other call to `inner`."""

    def __init__(self, inner: BaseVerificationBackend, *, numbers: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        codes = {phone_number_parse(number): str(code) for number, code in numbers.items()}
        self.fixed = FixedCodeBackend(codes=codes, **kwargs)
        self.supports_next = inner.supports_next
        self.supports_search = inner.supports_search

    @property
    def name(self) -> str:
        return self.inner.name

    def _for(self, request_id: str) -> BaseVerificationBackend:
        return self.fixed if request_id.startswith(REQUEST_ID_PREFIX) else self.inner

    def start(self, number: str) -> str:
        if number in self.fixed.codes:
            return self.fixed.start(number)
        return self.inner.start(number)

    def check(self, request_id: str, code: str) -> CheckResult:
        return self._for(request_id).check(request_id, code)

    def cancel(self, request_id: str) -> None:
        self._for(request_id).cancel(request_id)

    def trigger_next(self, request_id: str) -> None:
        self._for(request_id).trigger_next(request_id)

    def search(self, request_id: str) -> SearchResult:
        return self._for(request_id).search(request_id)
