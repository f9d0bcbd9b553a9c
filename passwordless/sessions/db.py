"""Database sessions, written once per change (see passwordless.sessions)."""

from django.contrib.sessions.backends import db

from . import DatabaseSessionMixin


class SessionStore(DatabaseSessionMixin, db.SessionStore):
    pass
