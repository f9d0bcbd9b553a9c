"""The site's session engines: Django's database sessions, safe through an outage.

SESSION_ENGINE=db (passwordless.sessions.db) and cached_db
(passwordless.sessions.cached_db) are Django's engines of the same names
with two changes, each for a way an outage used to lose a login:

- **A session is written once per change.** A save that would write what
  this store last wrote is skipped. A login writes its new session inside
  its own transaction (flows.services.user_login), so the save at the
  end of the request has nothing left to write; a database that fails just
  after the login committed can no longer turn it into an error page that
  keeps the new session's cookie from the browser, whose old session the
  login deleted.
- **The cache never serves a copy older than the database** (cached_db).
  Each copy is kept under the cache's current generation (CacheGeneration,
  one row). A copy the cache could not write or delete (Redis down or
  stopping) may leave an older copy behind, which a Redis restarted with its
  data would serve again (a login undone, a logout undone): the store that
  saw the failure starts a new generation, and every process reads its
  copies under the new one within GENERATION_POLL_INTERVAL seconds, so the
  old copies are never read again and expire by themselves.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from passwordless import outages

# Seconds a process goes on using the generation it last read.
GENERATION_POLL_INTERVAL = 1.0

# Seconds on a clock that only goes forward; tests replace it.
clock = time.monotonic

_lock = threading.Lock()
_generation = {"token": "", "read_at": float("-inf")}


def cache_generation() -> str:
    """Return the cache's current generation, read again once a second per process.

    When the database cannot be read, the last one read stands: the cache's
    copies are as good as they were.
    """
    from passwordless.models import CacheGeneration

    now = clock()
    with _lock:
        if now - _generation["read_at"] < GENERATION_POLL_INTERVAL:
            return _generation["token"]
    try:
        token = (
            CacheGeneration.objects.filter(pk=CacheGeneration.ROW)
            .values_list("token", flat=True)
            .first()
        )
    except DatabaseError as exc:
        if outages.report(exc) is None:
            raise
        token = None
    with _lock:
        if token is not None or _generation["read_at"] == float("-inf"):
            _generation["token"] = token or ""
        _generation["read_at"] = now
        return _generation["token"]


def cache_generation_advance() -> str:
    """Start a new generation of the cache's copies: an older copy may be left in the cache."""
    from passwordless.models import CacheGeneration

    token = uuid.uuid4().hex
    CacheGeneration.objects.update_or_create(
        pk=CacheGeneration.ROW, defaults={"token": token, "changed_at": timezone.now()}
    )
    with _lock:
        _generation["token"], _generation["read_at"] = token, clock()
    return token


def forget_cache_generation() -> None:
    """Read the generation again on next use (for tests: each starts from the database)."""
    with _lock:
        _generation["token"], _generation["read_at"] = "", float("-inf")


class DatabaseSessionMixin:
    """Django's database sessions, each change written once, in as few queries as it takes.

    - A save that would write what this store last wrote, under the same key,
      is skipped; what a save writes is `write()`.
    - A new key is taken by inserting it: the INSERT refuses a key in use
      (CreateError), so asking the database first, as Django does, is a
      query for nothing.
    - A session is deleted with one DELETE, through the model's manager
      (signals and routers as ever), not a SELECT then a DELETE.
    - A session moved to a new key (login(), a password change) has it at
      once, as with Django (a `user_logged_in` receiver reads it), and its
      next save inserts it: one INSERT of what it holds then, where Django
      inserts what it held before the login and updates it at once.
    - A row is written in a transaction of its own only inside a caller's
      (a savepoint, as Django does, so that a taken key leaves the caller's
      transaction usable). Outside one, the single statement commits by
      itself: Django's BEGIN and COMMIT around it are two round trips for
      nothing.
    """

    _written = None
    # cycle_key() drew a key that the next save inserts.
    _key_unsaved = False

    def save(self, must_create=False):
        if self._key_unsaved and self.session_key is not None:
            must_create = True
        data = self.serializer().dumps(self._get_session(no_load=must_create))
        if not must_create and self._written == (self.session_key, data):
            return
        try:
            self.write(must_create)
        except CreateError:
            if not self._key_unsaved:
                raise
            # The key cycle_key() drew is taken (practically never): another.
            self._key_unsaved = False
            self.create()
            return
        self._key_unsaved = False
        self._written = (self.session_key, data)

    def write(self, must_create: bool) -> None:
        """Write the session: its row (an engine that keeps copies elsewhere writes those too)."""
        self.write_row(must_create)

    def write_row(self, must_create: bool) -> None:
        """Write the session's row: Django's DBStore.save(), in fewer round trips."""
        if self.session_key is None:
            self.create()
            return
        data = self._get_session(no_load=must_create)
        row = self.create_model_instance(data)
        using = router.db_for_write(self.model, instance=row)
        own_transaction = (
            transaction.atomic(using=using)
            if transaction.get_connection(using).in_atomic_block
            else contextlib.nullcontext()
        )
        try:
            with own_transaction:
                row.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError as exc:
            if must_create:
                raise CreateError from exc
            raise
        except DatabaseError as exc:
            if not must_create:
                raise UpdateError from exc
            raise

    def create(self):
        while True:
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def cycle_key(self):
        data = self._session
        key = self.session_key
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._key_unsaved = True
        self._session_cache = data
        self.modified = True
        if key:
            self.delete(key)

    def delete_row(self, session_key: str) -> None:
        """Delete `session_key`'s row, if there is one."""
        self.model.objects.filter(session_key=session_key).delete()

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.delete_row(session_key)
