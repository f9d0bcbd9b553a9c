"""Headers the site adds to responses: the Content-Security-Policy, and no-store for users.

Django 5.2 has no CSP of its own. The policy here is one fixed string
(CONTENT_SECURITY_POLICY): the pages use no inline style or script, so they
need no nonces or per-view policies, which is what django-csp would add; the
header is built once, when the middleware is, not on every response.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import add_never_cache_headers

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    """Add CONTENT_SECURITY_POLICY to responses that do not set their own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if not self.policy or HEADER in response:
            return response
        # Django's debug pages (DEBUG on) style themselves inline: leave them
        # readable. With DEBUG off, 404 and 500 pages are ours and comply.
        if settings.DEBUG and response.status_code in {404, 500}:
            return response
        response[HEADER] = self.policy
        return response


class NeverCacheForUsersMiddleware:
    """Make every answer to a logged-in person uncacheable (Cache-Control: no-store).

    A page for a person must not stay in a shared computer's browser cache or
    a proxy's, nor come back with the back button after logout (ASVS 8.2.1).
    Views that forget never_cache are covered too: home, the account page,
    a 404 or a redirect. Anonymous answers keep their own headers. Belongs
    after AuthenticationMiddleware, which sets request.user.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.session_cookie = settings.SESSION_COOKIE_NAME

    def __call__(self, request):
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", "") and self._logged_in(request):
            add_never_cache_headers(response)
        return response

    def _logged_in(self, request) -> bool:
        session = getattr(request, "session", None)
        if session is None:
            return False
        # Without a session cookie, and with a session the view never touched,
        # nobody can be logged in (login() writes the session). Reading
        # request.user then would read the session and add "Vary: Cookie" to
        # answers that do not depend on it.
        if not session.accessed and self.session_cookie not in request.COOKIES:
            return False
        user = getattr(request, "user", None)
        return user is not None and user.is_authenticated
