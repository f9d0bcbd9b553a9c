"""Authentication backends."""

from __future__ import annotations

from django.contrib.auth import backends


class ModelBackend(backends.ModelBackend):
    """Django's ModelBackend, unchanged, under the path the site's sessions store.

    Every session records the dotted path of the backend that logged it in
    (`accounts.backends.ModelBackend`, see services.AUTHENTICATION_BACKEND), and
    Django keeps a session only while that path is in AUTHENTICATION_BACKENDS:
    this class keeps existing sessions valid, and is where a rule of the
    site's own about who may authenticate would go.
    """
