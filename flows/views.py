"""Pages of the phone login. Thin: forms shape the input, services run the flow.

Every refusal a service raises becomes a message and a redirect through one
table (refusals.py): a view has a single `except REFUSED` and no ladder.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LogoutView as DjangoLogoutView
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.generic import FormView

from accounts.phone import mask_phone_number
from verificationlog.models import Purpose

from . import services
from .exceptions import NoPendingVerification, RateLimited, WrongCodeLockout
from .forms import CodeForm, PhoneLoginForm
from .refusals import AGAIN, MESSAGES, REFUSED, refusal_for, wait_text

# What a step-up code allows, said on the code page: a person must see which
# change their code will approve.
STEP_UP_LABELS = {
    services.StepUpAction.DISABLE_2FA: "turn off the second factor",
    services.StepUpAction.REMOVE_PHONE: "remove your phone number",
    services.StepUpAction.CHANGE_PHONE: "change your phone number",
    services.StepUpAction.SET_PASSWORD: "set a password",
}


def safe_next_url(request, url: str) -> str:
    """Return `url` when it is a path on this site, else an empty string.

    Paths only: "account" passes url_has_allowed_host_and_scheme as a
    relative URL, but means nothing here.
    """
    if (
        url
        and url.startswith("/")
        and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return url
    return ""


def redirect_to(request, view_name: str) -> HttpResponseRedirect:
    """Redirect to the page named `view_name`, in the active language (i18n_patterns)."""
    return redirect(view_name)


def redirect_to_next(request, url: str) -> HttpResponseRedirect:
    """Redirect to `url` when it is safe, else home.

    Never through redirect(), which would take a bare word for a view name.
    """
    return HttpResponseRedirect(safe_next_url(request, url) or reverse("home"))


def rate_limited_response(request, exc: RateLimited):
    """Render the 429 page for a refused attempt."""
    key = "locked" if isinstance(exc, WrongCodeLockout) else "rate_limited"
    text = MESSAGES[key] % {"wait": wait_text(exc.retry_after)}
    messages.error(request, text)
    response = render(request, "429.html", {"retry_after": exc.retry_after}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def refused(request, step: str, exc: Exception, *, again=None):
    """Answer a refused `step`: the 429 page over a limit, else its message and next page.

    `again(text, refusal)` answers the rows that send the person back where
    they were (a form shown again); a page without a form of its own (the
    account page's buttons) sends them back to the account page.
    An exception the table does not name is raised again: it is no refusal.
    """
    refusal = refusal_for(step, exc)
    if refusal is None:
        if isinstance(exc, RateLimited):
            return rate_limited_response(request, exc)
        raise exc
    text = refusal.text(exc)
    if refusal.to is AGAIN and again is not None:
        return again(text, refusal)
    messages.add_message(request, refusal.level, text)
    return redirect_to(request, refusal.to or "accounts:account")


class RefusedFormMixin:
    """Show the form again, as typed, with what refused it."""

    def refused(self, step: str, exc: Exception, form):
        def again(text, refusal):
            if refusal.field in form.fields:
                form.add_error(refusal.field, text)
            else:
                messages.add_message(self.request, refusal.level, text)
            return self.render_to_response(self.get_context_data(form=form), status=200)

        return refused(self.request, step, exc, again=again)


def home(request):
    return render(request, "home.html")


@method_decorator(never_cache, name="dispatch")
class PhoneLoginView(RefusedFormMixin, FormView):
    form_class = PhoneLoginForm
    template_name = "flows/login.html"

    def get_next_url(self):
        return safe_next_url(self.request, self.request.GET.get("next", ""))

    def get_context_data(self, **kwargs):
        return super().get_context_data(next_url=self.get_next_url(), **kwargs)

    def form_valid(self, form):
        number = form.cleaned_data["number"]
        try:
            services.verification_start(
                self.request, number=number, purpose=Purpose.LOGIN, next_url=self.get_next_url()
            )
        except REFUSED as exc:
            return self.refused("start", exc, form)
        # No message: the code page itself says where the code went.
        return redirect_to(self.request, "flows:verify")


def _masked(number):
    return mask_phone_number(number)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class VerifyView(FormView):
    form_class = CodeForm
    template_name = "flows/verify.html"

    def dispatch(self, request, *args, **kwargs):
        try:
            self.pending = services.pending_require(request)
        except REFUSED as exc:
            return refused(request, "pending", exc)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            pending=self.pending,
            masked_number=_masked(self.pending.number),
            purpose=STEP_UP_LABELS.get(self.pending.action) or Purpose(self.pending.purpose).label,
            can_call=services.calls_possible(),
            resend_wait=services.resend_wait(self.pending.sent_at),
            **kwargs,
        )

    def form_valid(self, form):
        request = self.request
        try:
            pending = services.verification_check(request, code=form.cleaned_data["code"])
        except REFUSED as exc:
            return refused(request, "check", exc)
        return self.finish(pending)

    def finish(self, pending):
        """Complete whatever the code was for, then forget the verification.

        A failure of the database or the cache on the way (an exception that
        is no refusal) leaves the verification, known as verified, for the
        retry: the code is not asked of the provider again.
        """
        try:
            response = self.complete(pending)
        except Exception:
            services.verification_unfinished(self.request, pending)
            raise
        services.verification_done(self.request, pending)
        return response

    def complete(self, pending):
        finisher = self.finishers.get(pending.purpose, VerifyView.finish_unknown)
        try:
            return finisher(self, pending)
        except REFUSED as exc:
            return refused(self.request, "finish", exc)

    def finish_unknown(self, pending):
        # A purpose this code does not finish (an API verification, say).
        raise NoPendingVerification

    def finish_login(self, pending):
        if pending.purpose == Purpose.LOGIN:
            services.phone_login_finish(self.request, pending)
        else:
            services.second_factor_finish(self.request, pending)
        messages.success(self.request, MESSAGES["logged_in"])
        return redirect_to_next(self.request, pending.next_url)

    def finish_new_phone(self, pending):
        services.new_phone_finish(self.request, pending)
        messages.success(
            self.request, MESSAGES["phone_saved"] % {"number": _masked(pending.number)}
        )
        return redirect_to(self.request, "accounts:account")

    def finish_step_up(self, pending):
        following = services.step_up_finish(self.request, pending)
        if following is not None:
            text = MESSAGES["new_phone_code"] % {"number": _masked(following.number)}
            messages.info(self.request, text)
            return redirect_to(self.request, "flows:verify")
        key = {
            services.StepUpAction.DISABLE_2FA: "second_factor_off",
            services.StepUpAction.REMOVE_PHONE: "phone_removed",
            services.StepUpAction.SET_PASSWORD: "password_changed",
        }.get(pending.action)
        if key is None:
            raise NoPendingVerification
        messages.success(self.request, MESSAGES[key])
        return redirect_to(self.request, "accounts:account")

    finishers = {
        Purpose.LOGIN: finish_login,
        Purpose.SECOND_FACTOR: finish_login,
        Purpose.NEW_PHONE: finish_new_phone,
        Purpose.STEP_UP: finish_step_up,
    }


def _send_again(request, step: str, action, success_message: str):
    """Run a resend or call service and say what became of it."""
    try:
        pending = action(request)
    except REFUSED as exc:
        return refused(request, step, exc)
    messages.info(request, success_message % {"number": _masked(pending.number)})
    return redirect_to(request, "flows:verify")


@never_cache
@require_POST
def verify_resend(request):
    return _send_again(request, "resend", services.verification_resend, MESSAGES["resent"])


@never_cache
@require_POST
def verify_call(request):
    return _send_again(request, "call", services.verification_call, MESSAGES["call"])


@never_cache
@require_POST
def verify_cancel(request):
    stopped_upstream = services.verification_cancel(request)
    messages.info(request, MESSAGES["cancelled" if stopped_upstream else "cancelled_here"])
    return redirect_to(request, "flows:login")


class LogoutView(DjangoLogoutView):
    """POST only (Django's own rule); says so when it is done."""

    def post(self, request, *args, **kwargs):
        was_authenticated = request.user.is_authenticated
        services.verification_abandon(request)
        response = super().post(request, *args, **kwargs)
        if was_authenticated:
            messages.info(request, MESSAGES["logged_out"])
        return response


@method_decorator([never_cache, sensitive_post_parameters("password")], name="dispatch")
class PasswordLoginView(RefusedFormMixin, FormView):
    """Username and password; then a code for those who chose the second factor."""

    form_class = AuthenticationForm
    template_name = "flows/login_password.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_next_url(self):
        return safe_next_url(self.request, self.request.GET.get("next", ""))

    def get_context_data(self, **kwargs):
        return super().get_context_data(next_url=self.get_next_url(), **kwargs)

    def post(self, request, *args, **kwargs):
        username = str(request.POST.get("username", ""))[:150]
        try:
            services.password_attempt_start(request, username=username)
        except REFUSED as exc:
            return refused(request, "start", exc)
        form = self.get_form()
        if not form.has_error(NON_FIELD_ERRORS, "invalid_login"):
            # Only wrong passwords count against the limits.
            services.password_attempt_not_wrong(request, username=username)
        if form.is_valid():
            return self.form_valid(form)
        return self.form_invalid(form)

    def form_valid(self, form):
        request = self.request
        next_url = self.get_next_url()
        try:
            pending = services.password_login_start(
                request, user=form.get_user(), next_url=next_url
            )
        except REFUSED as exc:
            return self.refused("start", exc, form)
        if pending is None:
            messages.success(request, MESSAGES["logged_in"])
            return redirect_to_next(request, next_url)
        return redirect_to(request, "flows:verify")
