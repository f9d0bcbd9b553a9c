"""Outages of the site's own infrastructure: which dependency a failure means, told once.

When PostgreSQL or Redis cannot be reached, every request that needs it
fails the same way, hundreds a second under load. A person gets a handled
answer (passwordless.views.server_error: the 503 page; the JSON API: status
"5"), and the operator gets one line per dependency and incident instead of
a traceback per request:

    ERROR dependency unavailable: cache (ConnectionError)

at most once a minute per dependency and process while the failures last
(with the count of failures since the previous line), and, when /healthz
finds it answering again,

    INFO dependency available again: cache

Only exception class names are written: a database's error text may quote
the row it failed on, and rows hold phone numbers.

A failure counts as an outage when it means the service could not be used
now, not that the site asked it something wrong: an OperationalError or
InterfaceError from the database (refused or dropped connections, a server
shutting down, deadlocks, "database is locked"), a connection error or
timeout from Redis, Redis refusing writes (read-only replica, out of
memory), or a cache that swallowed its error and so could not count a rate
limit (flows.counters.CountersUnavailable). An IntegrityError or a Redis
script error is a bug and stays an HTTP 500.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError
from redis import exceptions as redis_exceptions

from flows.counters import CountersUnavailable

logger = logging.getLogger(__name__)

DATABASE = "database"
CACHE = "cache"

# Seconds a person or client is asked to wait (Retry-After): a Redis or
# PostgreSQL restart takes a few seconds.
RETRY_AFTER = 5

# At most one line per dependency and process in this many seconds.
REPORT_INTERVAL = 60.0

# Seconds on a clock that only goes forward; tests replace it.
clock = time.monotonic

# Exception classes, by the dependency they mean is unavailable. Database
# errors are Django's (django.db.utils), which wrap every driver's.
_UNAVAILABLE = (
    ((OperationalError, InterfaceError), DATABASE),
    (
        (
            redis_exceptions.ConnectionError,
            redis_exceptions.TimeoutError,
            redis_exceptions.ReadOnlyError,
            redis_exceptions.OutOfMemoryError,
            redis_exceptions.MasterDownError,
            redis_exceptions.ClusterDownError,
            redis_exceptions.TryAgainError,
            # A cache that swallowed its error (django-redis's
            # IGNORE_EXCEPTIONS) and could not count a rate limit.
            CountersUnavailable,
        ),
        CACHE,
    ),
)

# Set on an exception once reported, so that the same failure seen twice
# (by the error handler, then by the log record of the request) counts once.
_REPORTED = "_passwordless_outage_reported"


def unavailable_dependency(exc: BaseException | None) -> str | None:
    """Return the dependency ("database", "cache") whose outage `exc` is, or None.

    The chain of causes is followed: django-redis raises ConnectionInterrupted
    from Redis's own ConnectionError, and a failure while handling another
    carries the first as its context.
    """
    return _cause(exc)[0]


def _cause(exc: BaseException | None) -> tuple[str | None, BaseException | None]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for classes, dependency in _UNAVAILABLE:
            if isinstance(exc, classes):
                return dependency, _root(exc)
        exc = exc.__cause__ or exc.__context__
    return None, None


def _root(exc: BaseException) -> BaseException:
    # The driver's own error names the failure better than Django's wrapper:
    # ConnectionError rather than ConnectionInterrupted, psycopg's
    # OperationalError rather than Django's of the same name.
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


@dataclass
class _Incident:
    failed_at: float  # the last failure
    logged_at: float  # the last line
    failures: int = 0  # since the last line
    lines: int = 0


_incidents: dict[str, _Incident] = {}
_lock = threading.Lock()


def report(exc: BaseException | None, *, dependency: str | None = None) -> str | None:
    """Count `exc` against its dependency's incident, and log it unless logged this minute.

    `dependency` names it when the caller knows which one it asked (the
    health check); otherwise it is worked out from `exc`. Return the
    dependency, or None when `exc` is not an outage (nothing is counted).
    """
    found, root = _cause(exc)
    dependency = dependency or found
    if dependency is None:
        return None
    if exc is not None:
        if getattr(exc, _REPORTED, False):
            return dependency
        with contextlib.suppress(AttributeError):
            setattr(exc, _REPORTED, True)
    error = type(root or exc).__name__
    now = clock()
    with _lock:
        incident = _incidents.get(dependency)
        if incident is None or now - incident.failed_at >= REPORT_INTERVAL:
            # A dependency quiet for a minute that fails again is a new incident.
            incident = _incidents[dependency] = _Incident(
                failed_at=now, logged_at=now - REPORT_INTERVAL
            )
        incident.failed_at = now
        incident.failures += 1
        if now - incident.logged_at < REPORT_INTERVAL:
            return dependency
        failures, incident.failures = incident.failures, 0
        incident.logged_at = now
        incident.lines += 1
        first = incident.lines == 1
    if first:
        logger.error(
            "dependency unavailable: %s (%s)",
            dependency,
            error,
            extra={"dependency": dependency, "error": error},
        )
    else:
        logger.error(
            "dependency unavailable: %s (%s), %d failures since the last line",
            dependency,
            error,
            failures,
            extra={"dependency": dependency, "error": error, "failures": failures},
        )
    return dependency


def recovered(dependency: str) -> None:
    """Close `dependency`'s incident, if it has one: log that it answers again."""
    with _lock:
        incident = _incidents.pop(dependency, None)
    if incident is not None:
        logger.info("dependency available again: %s", dependency, extra={"dependency": dependency})


def ongoing() -> bool:
    """Say whether a dependency of this process failed in the last minute."""
    now = clock()
    with _lock:
        return any(now - incident.failed_at < REPORT_INTERVAL for incident in _incidents.values())


def reset() -> None:
    """Forget every incident (for tests: each starts with none)."""
    with _lock:
        _incidents.clear()


class OutageLogFilter(logging.Filter):
    """Fold the per-request log records of an outage into its incident's line.

    On Django's loggers: "django.request" logs every failed request, with
    its traceback, and "django.contrib.sessions" every session it could not
    write to the cache. While a dependency is down these would be one
    traceback per request; a record that carries an outage is counted
    (report()) and dropped, and so is a 503 of django.request while an
    incident is under way (the API's handled answers, /healthz). Every other
    record passes untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and report(exc) is not None:
            return False
        return not (getattr(record, "status_code", None) == 503 and ongoing())
