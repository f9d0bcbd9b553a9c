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
- **The cache's copy of a session is used only when it belongs to the
  cache's current generation** (cached_db). A Redis that could not write or
  delete a copy (down, stopping, unreachable), or that restarted from a
  snapshot, may hold a copy older than the database, which it would serve
  again (a login undone, a logout undone). Whatever sees that starts a new
  generation (CacheGeneration, one row); every process reads the generation
  again within GENERATION_POLL_INTERVAL seconds, and a copy of an earlier
  one is never served.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

from asgiref.sync import sync_to_async
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


class _Generation:
    """What this process knows of the cache's generation."""

    token: str | None = None  # None: never read, so no copy can be trusted
    read_at = float("-inf")
    advance_pending = False  # a failure seen that an advance has not yet recorded
    redis_run_id: str | None = None  # the Redis server last seen (a new one: a restart)


_known = _Generation()


def cache_generation(cache=None) -> str | None:
    """Return the cache's current generation, read again once a second per process.

    None while it is unknown (never read: the database was down since this
    process began), when no copy may be used. Each second's read also starts
    a new generation if this process saw a failure it could not record yet,
    or if Redis is a new server since the last read (it restarted, maybe from
    an older snapshot).
    """
    now = clock()
    with _lock:
        if now - _known.read_at < GENERATION_POLL_INTERVAL:
            return _known.token
        _known.read_at = now
    if cache is not None and _redis_restarted(cache):
        _known.advance_pending = True
    if _known.advance_pending:
        with contextlib.suppress(DatabaseError):
            cache_generation_advance()
            return _known.token
    try:
        with own_transaction(router.db_for_read(_model())):
            rows = _model().objects.filter(pk=_model().ROW)
            token = rows.values_list("token", flat=True).first()
    except DatabaseError as exc:
        if outages.report(exc) is None:
            raise
        return _known.token
    with _lock:
        _known.token = token or ""
        return _known.token


def cache_generation_advance() -> str:
    """Start a new generation of the cache's copies: an older copy may be left in the cache.

    When the database cannot record it, the next read of the generation tries
    again, and this process uses no copy meanwhile.
    """
    token = uuid.uuid4().hex
    with _lock:
        _known.advance_pending = True
    _model().objects.update_or_create(
        pk=_model().ROW, defaults={"token": token, "changed_at": timezone.now()}
    )
    with _lock:
        _known.token, _known.read_at, _known.advance_pending = token, clock(), False
    return token


def cache_generation_failed_read() -> None:
    """Note that the cache could not be read: the next read of the generation starts a new one."""
    with _lock:
        _known.advance_pending = True


def cache_generation_usable() -> bool:
    """Whether this process may use copies now: the generation known, no advance pending."""
    return _known.token is not None and not _known.advance_pending


def own_transaction(using: str):
    """Return a savepoint inside a caller's transaction, nothing outside one.

    Inside one, a statement that fails (a taken key, a database gone) must
    not leave the caller's transaction unusable; outside, a single statement
    commits by itself, and a BEGIN and COMMIT around it are two round trips
    for nothing.
    """
    if transaction.get_connection(using).in_atomic_block:
        return transaction.atomic(using=using)
    return contextlib.nullcontext()


def forget_cache_generation() -> None:
    """Know nothing of the generation (for tests: each starts from the database)."""
    global _known
    with _lock:
        _known = _Generation()


def _model():
    from passwordless.models import CacheGeneration

    return CacheGeneration


def _redis_run_id(cache) -> str | None:
    """Return the Redis server's run id (new at each start), or None for another cache."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    try:
        return client.get_client(write=True).info("server").get("run_id")
    except Exception as exc:
        if outages.report(exc) is None:
            raise
        return None


def _redis_restarted(cache) -> bool:
    run_id = _redis_run_id(cache)
    if run_id is None:
        return False
    with _lock:
        restarted = _known.redis_run_id is not None and _known.redis_run_id != run_id
        _known.redis_run_id = run_id
    return restarted


class DatabaseSessionMixin:
    """Django's database sessions, each change written once, in as few queries as it takes.

    - A save that would write what this store last wrote, under the same key,
      is skipped; what a save writes is `write()`.
    - A new key is taken by inserting it: the INSERT refuses a key in use
      (CreateError), so asking the database first, as Django does, is a
      query for nothing.
    - A session is deleted with one DELETE, through the model's manager
      (signals and routers as ever), not a SELECT then a DELETE; a custom
      session model's own delete() is not called (Django's is: it deletes
      the instance it read).
    - A session moved to a new key (login(), a password change) has it at
      once, as with Django (a `user_logged_in` receiver reads it), and its
      next save inserts it: one INSERT of what it holds then, where Django
      inserts what it held before the login and updates it at once. Until
      that save the new key has no row (with Django it has one).
    - A row is written in a transaction of its own only inside a caller's
      (a savepoint, as Django does, so that a taken key leaves the caller's
      transaction usable). Outside one, the single statement commits by
      itself: Django's BEGIN and COMMIT around it are two round trips for
      nothing.
    - A caller whose transaction ends with the session's write
      (flows.services.session_moving: a login, a password change) saves it
      with `save_in_transaction()`: no savepoint, and a taken key fails the
      caller's transaction instead of drawing another.
    """

    _written = None
    # cycle_key() drew a key that the next save inserts.
    _key_unsaved = False
    # save_in_transaction() is writing: no savepoint, a taken key is an error.
    _in_callers_transaction = False

    def save_in_transaction(self):
        """Save the session as part of the caller's transaction, without a savepoint.

        A savepoint (two round trips) is what lets a caller's transaction
        survive an INSERT that finds its new key taken, so that another key
        can be drawn. A key is 32 characters drawn by `secrets` (165 bits):
        it is taken only if the random generator repeats itself, the failure
        that would also let someone guess a key. Here that failure fails the
        caller's transaction (CreateError): nothing of it is written, and
        the row that holds the key is never touched.
        """
        self._in_callers_transaction = True
        try:
            self.save()
        finally:
            self._in_callers_transaction = False

    def save(self, must_create=False):
        if self.session_key is None:
            # A new session (or one flushed): create() takes a key and comes
            # back here to write under it.
            self._key_unsaved = False
            self.create()
            return
        if self._key_unsaved:
            must_create = True
        data = self.serializer().dumps(self._get_session(no_load=must_create))
        if not must_create and self._written == (self.session_key, data):
            return
        try:
            self.write(must_create)
        except CreateError:
            if not self._key_unsaved or self._in_callers_transaction:
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
        data = self._get_session(no_load=must_create)
        row = self.create_model_instance(data)
        using = router.db_for_write(self.model, instance=row)
        if self._in_callers_transaction:
            writing = contextlib.nullcontext()
        else:
            writing = own_transaction(using)
        try:
            with writing:
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
                if self._in_callers_transaction:
                    raise
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
        if session_key == self.session_key:
            # Deleted: a later save is an update of nothing (UpdateError), as
            # with Django, never the insert of a key cycle_key() drew.
            self._key_unsaved = False
            self._written = None
        self.delete_row(session_key)

    # Django's async methods have their own bodies; here they run the ones above.

    async def aload(self):
        return await sync_to_async(self.load)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def acreate(self):
        await sync_to_async(self.create)()

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)

    async def acycle_key(self):
        await sync_to_async(self.cycle_key)()

    async def aflush(self):
        await sync_to_async(self.flush)()
