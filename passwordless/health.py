"""GET /healthz, for load balancers: 200 when the database and the cache answer, else 503.

Answered by a middleware at the very top of MIDDLEWARE, before anything else
runs: a load balancer's probe is often plain HTTP with an IP address for a
Host header, which the SSL redirect and ALLOWED_HOSTS would refuse, and it
must not create a session, ask for a CSRF cookie or be logged. The body
names each dependency:

    {"database": "ok", "cache": "unavailable"}

Every answer is Cache-Control: no-store. A failed probe counts towards its
dependency's incident (passwordless.outages: one log line a minute, not one
a probe) and a good one closes it ("dependency available again").
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from . import outages

PATH = "/healthz"
# Read, never written: a probe must not grow the cache.
PROBE_KEY = "passwordless:healthz"


def dependencies_status() -> dict[str, str]:
    """Ask every database and cache for one answer; return "ok" or "unavailable" for each."""
    return {
        outages.DATABASE: _status(outages.DATABASE, _ping_databases),
        outages.CACHE: _status(outages.CACHE, _ping_caches),
    }


def _status(dependency: str, ping) -> str:
    try:
        ping()
    except Exception as exc:
        # Whatever the reason (down, a missing cache table, a wrong password),
        # the site cannot serve with it.
        outages.report(exc, dependency=dependency)
        return "unavailable"
    outages.recovered(dependency)
    return "ok"


def _ping_databases() -> None:
    for alias in settings.DATABASES:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")


def _ping_caches() -> None:
    for alias in settings.CACHES:
        caches[alias].get(PROBE_KEY)


class HealthCheckMiddleware:
    """Answer GET and HEAD /healthz with the state of the database and the cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != PATH:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
        else:
            status = dependencies_status()
            healthy = all(value == "ok" for value in status.values())
            response = JsonResponse(status, status=200 if healthy else 503)
            if request.method == "HEAD":
                response.content = b""
        add_never_cache_headers(response)
        return response
