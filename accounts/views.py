"""Pages of the phone login. Thin: forms shape the input, services run the flow."""

from __future__ import annotations

import math

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, SetPasswordForm
from django.contrib.auth.mixins import LoginRequiredMixin
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
from django.views.generic import FormView, TemplateView

from . import limits, services
from .exceptions import (
    CodeAlreadySent,
    NoPendingVerification,
    NumberNotAllowed,
    PasswordRequired,
    PhoneNumberUnavailable,
    RateLimited,
    ResendFailed,
    ResendTooSoon,
    SecondFactorRequired,
    SecondFactorUnavailable,
    VerificationInProgress,
    WrongCodeLockout,
)
from .forms import CodeForm, PhoneChangeForm, PhoneLoginForm
from .models import Purpose
from .phone import mask_phone_number
from .verification import get_backend
from .verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    Throttled,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
    VerificationExpired,
)

# Everything a person reads about a failure, in one place.
MESSAGES = {
    "already_sent": "We already sent a code to %(number)s a moment ago: type it here.",
    "in_progress": (
        "A code for another step is already on its way to %(number)s. Use it for that step, "
        "or cancel it below, then start again."
    ),
    "concurrent": (
        "A code was sent to this number a moment ago. Wait a few minutes, then try again."
    ),
    "invalid_number": (
        "We cannot send a code to this number. Check it, or use another phone number."
    ),
    "country_not_allowed": (
        "We do not send codes to phone numbers in this country. Use another phone number."
    ),
    "type_not_allowed": (
        "We cannot send codes to premium-rate, toll-free, shared-cost or similar numbers. "
        "Use a mobile phone number."
    ),
    "resend_wait": "You can ask for a new code or a call in %(wait)s.",
    "resend_failed": (
        "We could not send a new code, and the previous one no longer works. "
        "Start again in a moment."
    ),
    "throttled": "Too many attempts. Try again later.",
    "unavailable": (
        "The service is temporarily unavailable. Nothing was lost: try again in a moment."
    ),
    "incorrect_code": "That code is not right. %(attempts)s",
    "expired": "That code has expired or was already used. Start again to get a new code.",
    "too_many_attempts": "Wrong code too many times. Start again to get a new code.",
    "no_pending": "Enter your phone number to get a code.",
    "rate_limited": "Too many attempts. Wait %(wait)s, then try again.",
    "locked": (
        "Too many wrong codes for this phone number. No code is accepted for it for "
        "%(wait)s; try again after that."
    ),
    "resent": "A new code is on its way to %(number)s.",
    "resend_too_soon": (
        "A new code cannot be sent now. Use the code already sent, or wait until it "
        "expires and start again."
    ),
    "call": "We are calling %(number)s to read you the code.",
    "call_not_possible": "A call is not possible now. Use the code we sent, or start again.",
    "cancelled": "Cancelled. The code we sent will not work any more.",
    "cancelled_here": (
        "Cancelled here: the code already sent will not be accepted on this page. "
        "Our provider could not stop the message in time, so it may still arrive."
    ),
    "logged_in": "You are logged in.",
    "logged_out": "You have been logged out.",
    "use_password": (
        "Your account is protected by a password and a code. Log in with your password first."
    ),
    "second_factor_unavailable": (
        "Your account asks for a code, but has no phone number to send it to. "
        "Contact support to get back in."
    ),
    "phone_saved": "Your phone number is now %(number)s.",
    "phone_taken": "This number cannot be used for your account. Choose another one.",
    "new_phone_code": "Now enter the code we sent to your new number, %(number)s.",
    "step_up_sent": "To confirm it is you, enter the code we sent to %(number)s.",
    "second_factor_on": "Done: from now on you log in with your password and a code.",
    "second_factor_off": "The second factor is off: your password alone logs you in.",
    "second_factor_needs_phone": "Add a phone number first.",
    "second_factor_needs_password": "Set a password first: the second factor comes after it.",
    "phone_removed": "Your phone number is removed and the second factor is off.",
    "no_phone": "Your account has no phone number.",
    "password_changed": "Your password is saved.",
}


# What a step-up code allows, said on the code page: a person must see which
# change their code will approve.
STEP_UP_LABELS = {
    services.StepUpAction.DISABLE_2FA: "turn off the second factor",
    services.StepUpAction.REMOVE_PHONE: "remove your phone number",
    services.StepUpAction.CHANGE_PHONE: "change your phone number",
    services.StepUpAction.SET_PASSWORD: "set a password",
}


def _attempts_text(attempts_left):
    if attempts_left is None:
        return "Try again."
    return f"{attempts_left} attempt{'s' if attempts_left != 1 else ''} left."


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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
    text = MESSAGES[key] % {"wait": _wait_text(exc.retry_after)}
    messages.error(request, text)
    response = render(request, "429.html", {"retry_after": exc.retry_after}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def home(request):
    return render(request, "home.html")


@method_decorator(never_cache, name="dispatch")
class PhoneLoginView(FormView):
    form_class = PhoneLoginForm
    template_name = "accounts/login.html"

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
        except RateLimited as exc:
            return rate_limited_response(self.request, exc)
        except (CodeAlreadySent, VerificationInProgress) as exc:
            return _code_already_sent(self.request, exc)
        except VerificationError as exc:
            return self.start_failed(form, exc)
        # No message: the code page itself says where the code went.
        return redirect_to(self.request, "accounts:verify")

    def start_failed(self, form, exc):
        """Show the form again, as typed, with what went wrong."""
        if isinstance(exc, InvalidNumber):
            form.add_error("number", _start_failure_text(exc))
        else:
            messages.error(self.request, _start_failure_text(exc))
        return self.render_to_response(self.get_context_data(form=form), status=200)


def _code_already_sent(request, exc: CodeAlreadySent | VerificationInProgress):
    number = _masked(exc.pending.number)
    if isinstance(exc, VerificationInProgress):
        messages.error(request, MESSAGES["in_progress"] % {"number": number})
    else:
        messages.info(request, MESSAGES["already_sent"] % {"number": number})
    return redirect_to(request, "accounts:verify")


def _masked(number):
    return mask_phone_number(number)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class VerifyView(FormView):
    form_class = CodeForm
    template_name = "accounts/verify.html"

    def dispatch(self, request, *args, **kwargs):
        try:
            self.pending = services.pending_require(request)
        except NoPendingVerification:
            messages.info(request, MESSAGES["no_pending"])
            return redirect_to(request, "accounts:login")
        except VerificationExpired:
            messages.error(request, MESSAGES["expired"])
            return redirect_to(request, "accounts:login")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            pending=self.pending,
            masked_number=_masked(self.pending.number),
            purpose=STEP_UP_LABELS.get(self.pending.action) or Purpose(self.pending.purpose).label,
            can_call=get_backend().supports_next,
            resend_wait=services.resend_wait(self.pending.sent_at),
            **kwargs,
        )

    def form_valid(self, form):
        request = self.request
        try:
            pending = services.verification_check(request, code=form.cleaned_data["code"])
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        except NoPendingVerification:
            messages.info(request, MESSAGES["no_pending"])
            return redirect_to(request, "accounts:login")
        except IncorrectCode as exc:
            text = MESSAGES["incorrect_code"] % {"attempts": _attempts_text(exc.attempts_left)}
            messages.error(request, text)
            return redirect_to(request, "accounts:verify")
        except TooManyAttempts:
            messages.error(request, MESSAGES["too_many_attempts"])
            return redirect_to(request, "accounts:login")
        except VerificationExpired:
            messages.error(request, MESSAGES["expired"])
            return redirect_to(request, "accounts:login")
        except VerificationError:
            # Nothing lost: the pending verification stays for another try.
            messages.error(request, MESSAGES["unavailable"])
            return redirect_to(request, "accounts:verify")
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
            services.verification_unfinished(pending)
            raise
        services.verification_done(self.request, pending)
        return response

    def complete(self, pending):
        request = self.request
        try:
            return self.finishers[pending.purpose](self, pending)
        except SecondFactorRequired:
            messages.error(request, MESSAGES["use_password"])
            return redirect_to(request, "accounts:password_login")
        except PhoneNumberUnavailable:
            messages.error(request, MESSAGES["phone_taken"])
            return redirect_to(request, "accounts:account")
        except (NoPendingVerification, KeyError):
            messages.error(request, MESSAGES["expired"])
            return redirect_to(request, "accounts:login")
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        except VerificationError:
            messages.error(request, MESSAGES["unavailable"])
            return redirect_to(request, "accounts:account")

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
            return redirect_to(self.request, "accounts:verify")
        key = {
            services.StepUpAction.DISABLE_2FA: "second_factor_off",
            services.StepUpAction.REMOVE_PHONE: "phone_removed",
            services.StepUpAction.SET_PASSWORD: "password_changed",
        }[pending.action]
        messages.success(self.request, MESSAGES[key])
        return redirect_to(self.request, "accounts:account")

    finishers = {
        Purpose.LOGIN: finish_login,
        Purpose.SECOND_FACTOR: finish_login,
        Purpose.NEW_PHONE: finish_new_phone,
        Purpose.STEP_UP: finish_step_up,
    }


def _pending_action(request, action, success_message):
    """Run a resend or call service and turn its outcome into a message."""
    try:
        pending = action(request)
    except NoPendingVerification:
        messages.info(request, MESSAGES["no_pending"])
        return redirect_to(request, "accounts:login")
    except ResendTooSoon as exc:
        messages.error(request, MESSAGES["resend_wait"] % {"wait": _wait_text(exc.retry_after)})
        return redirect_to(request, "accounts:verify")
    except RateLimited as exc:
        return rate_limited_response(request, exc)
    except ActionNotAllowed:
        key = "resend_too_soon" if action is services.verification_resend else "call_not_possible"
        messages.error(request, MESSAGES[key])
        return redirect_to(request, "accounts:verify")
    except ResendFailed:
        messages.error(request, MESSAGES["resend_failed"])
        return redirect_to(request, "accounts:login")
    except VerificationEnded:
        messages.error(request, MESSAGES["expired"])
        return redirect_to(request, "accounts:login")
    except InvalidNumber as exc:
        messages.error(request, _start_failure_text(exc))
        return redirect_to(request, "accounts:login")
    except VerificationError as exc:
        # Nothing lost: the pending verification stays for another try.
        messages.error(request, _start_failure_text(exc))
        return redirect_to(request, "accounts:verify")
    messages.info(request, success_message % {"number": _masked(pending.number)})
    return redirect_to(request, "accounts:verify")


@never_cache
@require_POST
def verify_resend(request):
    return _pending_action(request, services.verification_resend, MESSAGES["resent"])


@never_cache
@require_POST
def verify_call(request):
    return _pending_action(request, services.verification_call, MESSAGES["call"])


@never_cache
@require_POST
def verify_cancel(request):
    stopped_upstream = services.verification_cancel(request)
    messages.info(request, MESSAGES["cancelled" if stopped_upstream else "cancelled_here"])
    return redirect_to(request, "accounts:login")


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
class PasswordLoginView(FormView):
    """Username and password; then a code for those who chose the second factor."""

    form_class = AuthenticationForm
    template_name = "accounts/login_password.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_next_url(self):
        return safe_next_url(self.request, self.request.GET.get("next", ""))

    def get_context_data(self, **kwargs):
        return super().get_context_data(next_url=self.get_next_url(), **kwargs)

    def post(self, request, *args, **kwargs):
        username = str(request.POST.get("username", ""))[:150]
        try:
            limits.limit_password_attempt(request, username=username)
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        form = self.get_form()
        if not form.has_error(NON_FIELD_ERRORS, "invalid_login"):
            # Only wrong passwords count against the limits.
            limits.password_attempt_uncount(request, username=username)
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
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        except SecondFactorUnavailable:
            messages.error(request, MESSAGES["second_factor_unavailable"])
            return self.form_invalid(form)
        except (CodeAlreadySent, VerificationInProgress) as exc:
            return _code_already_sent(request, exc)
        except VerificationError as exc:
            messages.error(request, _start_failure_text(exc))
            return self.form_invalid(form)
        if pending is None:
            messages.success(request, MESSAGES["logged_in"])
            return redirect_to_next(request, next_url)
        return redirect_to(request, "accounts:verify")


def _start_failure_text(exc: VerificationError) -> str:
    if isinstance(exc, NumberNotAllowed):
        return MESSAGES[f"{exc.reason}_not_allowed"]
    if isinstance(exc, InvalidNumber):
        return MESSAGES["invalid_number"]
    if isinstance(exc, ConcurrentVerification):
        return MESSAGES["concurrent"]
    if isinstance(exc, Throttled):
        return MESSAGES["throttled"]
    return MESSAGES["unavailable"]


class AccountView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/account.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        phone = user.phone_number_for_2fa
        return super().get_context_data(
            masked_number=_masked(str(phone)) if phone else "",
            has_password=user.has_usable_password(),
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
class PhoneChangeView(LoginRequiredMixin, FormView):
    """Add or change the phone number: saved only once a code sent to it is checked."""

    form_class = PhoneChangeForm
    template_name = "accounts/account_phone.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def form_valid(self, form):
        request = self.request
        try:
            pending = services.phone_change_start(
                request, user=request.user, number=form.cleaned_data["number"]
            )
        except PhoneNumberUnavailable:
            form.add_error("number", MESSAGES["phone_taken"])
            return self.form_invalid(form)
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        except (CodeAlreadySent, VerificationInProgress) as exc:
            return _code_already_sent(request, exc)
        except VerificationError as exc:
            if isinstance(exc, InvalidNumber):
                form.add_error("number", _start_failure_text(exc))
            else:
                messages.error(request, _start_failure_text(exc))
            return self.form_invalid(form)
        if pending.purpose == Purpose.STEP_UP:
            messages.info(request, MESSAGES["step_up_sent"] % {"number": _masked(pending.number)})
        return redirect_to(request, "accounts:verify")


def _step_up(request, action):
    """Send a fresh code to the current phone before `action`."""
    try:
        pending = services.step_up_start(request, user=request.user, action=action)
    except PhoneNumberUnavailable:
        messages.error(request, MESSAGES["no_phone"])
        return redirect_to(request, "accounts:account")
    except RateLimited as exc:
        return rate_limited_response(request, exc)
    except (CodeAlreadySent, VerificationInProgress) as exc:
        return _code_already_sent(request, exc)
    except VerificationError as exc:
        messages.error(request, _start_failure_text(exc))
        return redirect_to(request, "accounts:account")
    messages.info(request, MESSAGES["step_up_sent"] % {"number": _masked(pending.number)})
    return redirect_to(request, "accounts:verify")


@never_cache
@require_POST
@login_required
def second_factor_enable(request):
    try:
        services.second_factor_enable(user=request.user)
    except PhoneNumberUnavailable:
        messages.error(request, MESSAGES["second_factor_needs_phone"])
    except PasswordRequired:
        messages.error(request, MESSAGES["second_factor_needs_password"])
    else:
        messages.success(request, MESSAGES["second_factor_on"])
    return redirect_to(request, "accounts:account")


@never_cache
@require_POST
@login_required
def second_factor_disable(request):
    return _step_up(request, services.StepUpAction.DISABLE_2FA)


@never_cache
@require_POST
@login_required
def phone_remove(request):
    return _step_up(request, services.StepUpAction.REMOVE_PHONE)


@method_decorator(
    [
        never_cache,
        sensitive_post_parameters("old_password", "new_password1", "new_password2"),
    ],
    name="dispatch",
)
class PasswordView(LoginRequiredMixin, FormView):
    """Set a first password (phone-only users) or change the current one."""

    template_name = "accounts/account_password.html"

    def get_form_class(self):
        if self.request.user.has_usable_password():
            return PasswordChangeForm
        return SetPasswordForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def form_valid(self, form):
        request = self.request
        if isinstance(form, PasswordChangeForm):
            form.save()
            # Keep this session logged in; other sessions of the user end.
            update_session_auth_hash(request, form.user)
            messages.success(request, MESSAGES["password_changed"])
            return redirect_to(request, "accounts:account")
        try:
            pending = services.first_password_set(
                request, user=form.user, password=form.cleaned_data["new_password1"]
            )
        except RateLimited as exc:
            return rate_limited_response(request, exc)
        except (CodeAlreadySent, VerificationInProgress) as exc:
            return _code_already_sent(request, exc)
        except VerificationError as exc:
            messages.error(request, _start_failure_text(exc))
            return self.form_invalid(form)
        if pending is None:
            messages.success(request, MESSAGES["password_changed"])
            return redirect_to(request, "accounts:account")
        messages.info(request, MESSAGES["step_up_sent"] % {"number": _masked(pending.number)})
        return redirect_to(request, "accounts:verify")
