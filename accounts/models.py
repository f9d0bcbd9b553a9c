from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from phonenumber_field.modelfields import PhoneNumberField


class User(AbstractUser):
    """A person who logs in by phone, by password, or by password and phone."""

    phone_number_for_2fa = PhoneNumberField(
        "phone number",
        unique=True,
        null=True,
        blank=True,
        help_text="In international format (E.164), e.g. +14155550100.",
    )
    is_2fa_enabled = models.BooleanField(
        "second factor enabled",
        default=False,
        help_text="Ask for a code sent to the phone number after the password.",
    )

    def __str__(self):
        return self.username
