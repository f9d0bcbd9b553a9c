from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import User


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
