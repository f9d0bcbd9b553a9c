"""The Content-Security-Policy header, on every response.

Django 5.2 has no CSP of its own. The policy here is one fixed string
(CONTENT_SECURITY_POLICY): the pages use no inline style or script, so they
need no nonces or per-view policies, which is what django-csp would add; the
header is built once, when the middleware is, not on every response.
"""

from __future__ import annotations

from django.conf import settings

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
