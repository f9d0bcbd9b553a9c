"""The site's answer to an exception nothing else handled (handler500).

Django turns an exception into this view's answer wherever it happens: in a
view, or in a middleware (SessionMiddleware saving the session, the user read
for the no-store header), at whichever layer raised it. When the exception
means the database or the cache could not be reached (passwordless.outages),
the answer is the 503 page, "temporarily unavailable, nothing was lost", with
Retry-After, or under /api/ the API's status "5"; any other exception keeps
Django's plain 500 page.

The 503 answer is built from nothing the outage could have broken: a
template that extends nothing and uses no context processor (no session, no
user, no messages, no database), rendered without the request.

Nothing half-done is kept: SessionMiddleware saves a session only for
answers under 500, so a 503 leaves the stored session as it was before the
request (a pending verification the view had already removed in memory is
still there for the retry), and sets no cookie.

With DEBUG on, Django shows its technical page for every exception instead
of calling this view: in development, the traceback of a stopped database is
what one wants to see.
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.views import defaults

from flows.api.errors import unavailable
from flows.api.views import error_response

from . import outages

UNAVAILABLE_TEMPLATE = "503.html"


def server_error(request: HttpRequest, template_name: str = defaults.ERROR_500_TEMPLATE_NAME):
    """Answer 503 for an outage of the database or the cache, Django's 500 page otherwise."""
    exc = sys.exc_info()[1]
    if outages.report(exc) is None:
        return defaults.server_error(request, template_name=template_name)
    return _unavailable(request)


def bad_request(
    request: HttpRequest, exception, template_name: str = defaults.ERROR_400_TEMPLATE_NAME
):
    """Answer 503 when a 400 comes of an outage, Django's 400 page otherwise.

    SessionMiddleware reports a session the database could not save as
    SessionInterrupted, a 400 ("the session was deleted"); its cause is the
    database's error.
    """
    if outages.report(exception) is None:
        return defaults.bad_request(request, exception, template_name=template_name)
    return _unavailable(request)


def _unavailable(request: HttpRequest) -> HttpResponse:
    # The step did not happen: the browser keeps its CSRF cookie. A login cut
    # short has already rotated the token, and a new cookie would make the
    # reload of the same form a 403 "form expired".
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False
    if _is_api(request):
        response = error_response(unavailable())
    else:
        response = HttpResponse(render_to_string(UNAVAILABLE_TEMPLATE), status=503)
    response["Retry-After"] = str(outages.RETRY_AFTER)
    add_never_cache_headers(response)
    return response


def _is_api(request: HttpRequest) -> bool:
    try:
        prefix = reverse("api:not_found", kwargs={"path": ""})
    except NoReverseMatch:
        return False
    return request.path_info.startswith(prefix)
