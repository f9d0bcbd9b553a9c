"""Database sessions read through the cache, never a copy older than the database.

See passwordless.sessions. Differences from Django's cached_db:
- a copy carries the cache's generation and is used only in that
  generation; a copy the cache could not write or delete starts a new one;
- a deleted session leaves a marker in the cache for a minute, so that a
  request that read its row just before the delete committed cannot put a
  copy back (a login's old session, a logout);
- a cache that cannot be read or written leaves the database to answer
  alone: the request goes on;
- a copy made from the database after a cache miss is added, not set, so it
  never overwrites a newer copy another request wrote meanwhile;
- whether a key is taken is asked of the database alone.
"""

from __future__ import annotations

from django.contrib.sessions.backends import cached_db, db

from passwordless import outages

from . import (
    DatabaseSessionMixin,
    cache_generation,
    cache_generation_advance,
    cache_generation_failed_read,
    cache_generation_usable,
)

KEY_PREFIX = "passwordless.sessions:"

# What a deleted session's key holds in the cache, and for how long (seconds).
DELETED = "deleted"
DELETED_FOR = 60


class SessionStore(DatabaseSessionMixin, cached_db.SessionStore):
    cache_key_prefix = KEY_PREFIX

    _generation_known = False

    def _generation(self) -> str | None:
        """Return the generation whose copies this store may use, or None for none.

        Read once per store (a request), at its first use: the session's load,
        before any transaction of the request's, so a request never reads it
        again in the middle of a login's.
        """
        if not self._generation_known:
            generation = cache_generation(self._cache)
            self._generation_now = generation if cache_generation_usable() else None
            self._generation_known = True
        return self._generation_now

    def load(self):
        generation = self._generation()
        if generation is not None:
            try:
                copy = self._cache.get(self.cache_key)
            except Exception as exc:
                self._cache_failed(exc, stale=False)
                copy = None
            if isinstance(copy, tuple) and copy[0] == generation:
                return copy[1]
        stored = self._get_session_from_db()
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        if generation is not None:
            expiry = self.get_expiry_age(expiry=stored.expire_date)
            try:
                self._cache.add(self.cache_key, (generation, data), expiry)
            except Exception as exc:
                self._cache_failed(exc, stale=False)
        return data

    def exists(self, session_key):
        # The database is the truth; a copy is only ever a copy of a row.
        return db.SessionStore.exists(self, session_key)

    def write(self, must_create):
        self.write_row(must_create)
        generation = self._generation()
        try:
            if generation is None:
                # No copy may be used now: none may stay either.
                self._cache.delete(self.cache_key)
            else:
                copy = (generation, self._session)
                self._cache.set(self.cache_key, copy, self.get_expiry_age())
        except Exception as exc:
            self._cache_failed(exc, stale=True)

    def delete_row(self, session_key):
        super().delete_row(session_key)
        try:
            self._cache.set(self.cache_key_prefix + session_key, DELETED, DELETED_FOR)
        except Exception as exc:
            self._cache_failed(exc, stale=True)

    def _cache_failed(self, exc: Exception, *, stale: bool) -> None:
        """Go on without the cache, unless `exc` is no outage but a bug.

        `stale`: the cache may now hold a copy older than the database (a
        write or a delete failed), so a new generation begins first, whatever
        the error. A failed read needs one too: the cache may be restarting
        from an older snapshot; the next read of the generation records it.
        """
        if stale:
            try:
                cache_generation_advance()
            except Exception as advance_exc:
                if outages.report(advance_exc) is None:
                    raise
        else:
            cache_generation_failed_read()
        if outages.report(exc) is None:
            raise exc
