"""Account pages: the phone number, the second factor, the password.

Thin, like the login pages (flows/views.py): a change that needs a code starts
a flow (flows.services) and sends the person to the code page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.generic import FormView, TemplateView

from flows import services
from flows.refusals import MESSAGES, REFUSED
from flows.views import RefusedFormMixin, redirect_to, refused
from verificationlog.models import Purpose

from .forms import PhoneChangeForm
from .phone import mask_phone_number


class AccountView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/account.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        phone = user.phone_number_for_2fa
        return super().get_context_data(
            masked_number=mask_phone_number(str(phone)) if phone else "",
            has_password=user.has_usable_password(),
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
class PhoneChangeView(RefusedFormMixin, LoginRequiredMixin, FormView):
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
        except REFUSED as exc:
            return self.refused("start", exc, form)
        if pending.purpose == Purpose.STEP_UP:
            messages.info(
                request, MESSAGES["step_up_sent"] % {"number": mask_phone_number(pending.number)}
            )
        return redirect_to(request, "flows:verify")


def _step_up(request, action):
    """Send a fresh code to the current phone before `action`."""
    try:
        pending = services.step_up_start(request, user=request.user, action=action)
    except REFUSED as exc:
        # Refused here, the person goes back to the account page.
        return refused(request, "step_up", exc)
    messages.info(request, MESSAGES["step_up_sent"] % {"number": mask_phone_number(pending.number)})
    return redirect_to(request, "flows:verify")


@never_cache
@require_POST
@login_required
def second_factor_enable(request):
    try:
        services.second_factor_enable(user=request.user)
    except REFUSED as exc:
        return refused(request, "second_factor", exc)
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
class PasswordView(RefusedFormMixin, LoginRequiredMixin, FormView):
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
            # Keep this session logged in; other sessions of the user end.
            services.user_password_changed(request, form.user, save=form.save)
            messages.success(request, MESSAGES["password_changed"])
            return redirect_to(request, "accounts:account")
        try:
            pending = services.first_password_set(
                request, user=form.user, password=form.cleaned_data["new_password1"]
            )
        except REFUSED as exc:
            return self.refused("start", exc, form)
        if pending is None:
            messages.success(request, MESSAGES["password_changed"])
            return redirect_to(request, "accounts:account")
        messages.info(
            request, MESSAGES["step_up_sent"] % {"number": mask_phone_number(pending.number)}
        )
        return redirect_to(request, "flows:verify")
