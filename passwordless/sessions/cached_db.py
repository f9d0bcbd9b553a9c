"""Database sessions read through the cache, never a copy older than the database.

See passwordless.sessions. Differences from Django's cached_db, each for an
outage of the cache:
- copies live under the cache's generation, and a copy the cache could not
  write or delete starts a new one (the old copies are never read again);
- a cache that cannot be read or written leaves the database to answer
  alone: the request goes on;
- a copy made from the database after a cache miss is added, not set, so it
  never overwrites a newer copy another request wrote meanwhile.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import cached_db, db

from passwordless import outages

from . import DatabaseSessionMixin, cache_generation, cache_generation_advance

KEY_PREFIX = "passwordless.sessions"


class SessionStore(DatabaseSessionMixin, cached_db.SessionStore):
    cache_key_prefix = KEY_PREFIX

    @property
    def cache_key(self):
        return self._cache_key(self._get_or_create_session_key())

    async def acache_key(self):
        session_key = await self._aget_or_create_session_key()
        return await sync_to_async(self._cache_key)(session_key)

    def _cache_key(self, session_key: str) -> str:
        return f"{self.cache_key_prefix}:{cache_generation()}:{session_key}"

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception as exc:
            self._cache_failed(exc, stale=False)
            data = None
        if data is not None:
            return data
        stored = self._get_session_from_db()
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        try:
            self._cache.add(self.cache_key, data, self.get_expiry_age(expiry=stored.expire_date))
        except Exception as exc:
            self._cache_failed(exc, stale=False)
        return data

    def exists(self, session_key):
        # The database is the truth; a copy is only ever a copy of a row.
        return db.SessionStore.exists(self, session_key)

    def write(self, must_create):
        if self.session_key is None:
            # create() picks a key and comes back here to write under it.
            self.create()
            return
        self.write_row(must_create)
        try:
            self._cache.set(self.cache_key, self._session, self.get_expiry_age())
        except Exception as exc:
            self._cache_failed(exc, stale=True)

    def delete_row(self, session_key):
        super().delete_row(session_key)
        try:
            self._cache.delete(self._cache_key(session_key))
        except Exception as exc:
            self._cache_failed(exc, stale=True)

    def _cache_failed(self, exc: Exception, *, stale: bool) -> None:
        """Go on without the cache; when it may now hold an old copy, start a new generation."""
        if outages.report(exc) is None:
            raise exc
        if stale:
            cache_generation_advance()
