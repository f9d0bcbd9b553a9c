"""The provider layer: sends and checks codes. Knows nothing of requests or sessions."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .backends.base import BaseVerificationBackend, CheckResult

__all__ = ["BaseVerificationBackend", "CheckResult", "get_backend"]


def get_backend(backend: str | None = None, **kwargs) -> BaseVerificationBackend:
    """Build the configured verification backend (or `backend`, a dotted path).

    With VERIFY_TEST_NUMBERS set, the listed numbers get their fixed code
    instead of a message, whichever backend runs.
    """
    instance = import_string(backend or settings.VERIFICATION_BACKEND)(**kwargs)
    if settings.VERIFY_TEST_NUMBERS:
        from .backends.testnumbers import TestNumbersBackend

        instance = TestNumbersBackend(instance, numbers=settings.VERIFY_TEST_NUMBERS)
    return instance
