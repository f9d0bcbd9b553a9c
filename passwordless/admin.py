"""The admin site: Django's own, entered only through the site's login."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

NOT_STAFF_MESSAGE = (
    "You are logged in as %(username)s, but this account cannot open the admin. "
    "Log in with an account that can."
)


class AdminSite(admin.AdminSite):
    """Django's admin, whose login page is the site's password login.

    Django's admin login checks a password and logs the person in at once: it
    knows neither the site's password limits nor the second factor, so it
    would be a side door. Its URL now sends the visitor to the site's password
    login (limits per IP and per username, then a code for those who chose
    one) with `next` pointing back into the admin. A password posted to it is
    never checked.
    """

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request, extra_context=None):
        index = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return HttpResponseRedirect(index)
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = index
        if request.user.is_authenticated:
            messages.error(request, NOT_STAFF_MESSAGE % {"username": request.user.get_username()})
        return redirect_to_login(next_url, reverse("flows:password_login"))
