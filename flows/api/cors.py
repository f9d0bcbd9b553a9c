"""Cross-origin access to the API: off unless API_CORS_ORIGINS names the origin.

Native apps send no Origin and need none of this; a web view or a browser app
served from another origin does. Origins match exactly ("https://app.example.com",
"capacitor://localhost"): there is no wildcard.

Being unable to read the answer is not enough: a page on any site can make
its visitors' browsers POST a form-encoded body here without a preflight, and
the code would be sent. So a request that a browser marks as coming from
another origin is refused before it is read (cross_origin_refused).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type"
# Browsers cap this themselves (Chrome at 2 hours).
PREFLIGHT_MAX_AGE = 3600
# Sec-Fetch-Site values of a request made by a page of another site. A
# sibling subdomain is "same-site", and no more trusted than any other
# origin: it may be another team's host, user content, or a forgotten DNS
# record taken over. Only exact origins in API_CORS_ORIGINS are.
FOREIGN_FETCH_SITES = {"cross-site", "same-site"}


def cors_allowed_origin(request: HttpRequest) -> str | None:
    """Return the request's Origin when API_CORS_ORIGINS allows it."""
    origin = request.headers.get("Origin")
    if origin and origin in settings.API_CORS_ORIGINS:
        return origin
    return None


def cross_origin_refused(request: HttpRequest) -> bool:
    """Say whether a browser made `request` for a page of an origin the API does not serve.

    Allowed: no Origin and no foreign Sec-Fetch-Site (a native app, curl), an
    origin in API_CORS_ORIGINS, or the site's own origin. Browsers send Origin
    on every POST from a page; Sec-Fetch-Site catches the few that leave it
    out (privacy settings, extensions).
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin in settings.API_CORS_ORIGINS:
        return False
    if request.headers.get("Sec-Fetch-Site", "").lower() in FOREIGN_FETCH_SITES:
        return True
    return origin is not None and origin != _own_origin(request)


def _own_origin(request: HttpRequest) -> str:
    # What Django's CSRF check compares Origin with.
    return f"{request.scheme}://{request.get_host()}"


def cors_preflight_response(request: HttpRequest) -> HttpResponse | None:
    """Answer a preflight from an allowed origin; None for any other OPTIONS."""
    origin = cors_allowed_origin(request)
    if origin is None or "Access-Control-Request-Method" not in request.headers:
        return None
    response = HttpResponse(status=204)
    # No body, so no Content-Type (HttpResponse would say text/html).
    del response["Content-Type"]
    response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def cors_add_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Let an allowed origin read `response` (and its Retry-After)."""
    if settings.API_CORS_ORIGINS:
        # The answer differs by Origin: caches must keep them apart.
        patch_vary_headers(response, ["Origin"])
    origin = cors_allowed_origin(request)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response
