"""The provider layer: sends and checks codes. Knows nothing of requests or sessions."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .backends.base import BaseVerificationBackend, CheckResult

__all__ = ["BaseVerificationBackend", "CheckResult", "get_backend"]


def get_backend(backend: str | None = None, **kwargs) -> BaseVerificationBackend:
    """Build the configured verification backend (or `backend`, a dotted path)."""
    return import_string(backend or settings.VERIFICATION_BACKEND)(**kwargs)
