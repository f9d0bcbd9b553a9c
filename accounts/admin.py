"""The admin of users, with the lost-phone action."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.template.response import TemplateResponse

from .models import User
from .phone import mask_phone_number

logger = logging.getLogger(__name__)

LOST_PHONE_CHANGE_MESSAGE = "Lost phone: turned off the second factor and cleared the phone number."


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "phone_number_for_2fa",
        "is_2fa_enabled",
        "email",
        "is_staff",
        "is_active",
    )
    list_filter = ("is_2fa_enabled", *DjangoUserAdmin.list_filter)
    search_fields = ("username", "phone_number_for_2fa", "email", "first_name", "last_name")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Phone", {"fields": ("phone_number_for_2fa", "is_2fa_enabled")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Phone", {"fields": ("phone_number_for_2fa", "is_2fa_enabled")}),
    )
    actions = ["lost_phone"]

    @admin.action(
        permissions=["change"],
        description="Lost phone: turn off the second factor and clear the phone number",
    )
    def lost_phone(self, request, queryset):
        """Ask for confirmation, then turn off the second factor and clear the number."""
        if request.POST.get("confirmed") != "yes":
            return self._lost_phone_confirmation(request, queryset)
        changed = 0
        with transaction.atomic():
            for user in queryset:
                if not user.phone_number_for_2fa and not user.is_2fa_enabled:
                    continue
                number = str(user.phone_number_for_2fa or "")
                user.phone_number_for_2fa = None
                user.is_2fa_enabled = False
                user.save(update_fields=["phone_number_for_2fa", "is_2fa_enabled"])
                self.log_change(request, user, LOST_PHONE_CHANGE_MESSAGE)
                logger.info(
                    "lost phone: second factor off and phone number cleared "
                    "user_id=%s number=%s by admin user_id=%s",
                    user.pk,
                    mask_phone_number(number) if number else "-",
                    request.user.pk,
                )
                changed += 1
        if changed:
            self.message_user(
                request,
                f"Turned off the second factor and cleared the phone number of {changed} "
                f"user{'s' if changed != 1 else ''}.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                "Nothing to do: the selected users have no phone number and no second factor.",
                messages.WARNING,
            )
        return None

    def _lost_phone_confirmation(self, request, queryset):
        users = [
            {
                "user": user,
                "number": (
                    mask_phone_number(str(user.phone_number_for_2fa))
                    if user.phone_number_for_2fa
                    else ""
                ),
                # With no password, the phone was the only way in.
                "locked_out": not user.has_usable_password(),
            }
            for user in queryset
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Lost phone: are you sure?",
            "opts": self.model._meta,
            "users": users,
            "queryset": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "lost_phone",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/accounts/user/lost_phone_confirmation.html", context
        )
