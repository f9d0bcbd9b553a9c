"""Database sessions, written once per change (see passwordless.sessions)."""

from django.contrib.sessions.backends import db

from . import DatabaseSessionMixin


class SessionStore(DatabaseSessionMixin, db.SessionStore):
    def write(self, must_create):
        db.SessionStore.save(self, must_create)
