"""The shape of what people type on the account pages, and the phone number field."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .phone import MAX_INPUT_LENGTH, InvalidPhoneNumber, phone_number_parse


class PhoneNumberField(forms.CharField):
    """A phone number as people type it; cleans to E.164."""

    default_error_messages = {
        "invalid_number": (
            "Enter a valid phone number in international format, starting with + "
            "and the country code, e.g. +1 415 555 0100."
        ),
        "invalid_number_with_region": (
            "Enter a valid phone number, e.g. 020 7946 0018, or in international format "
            "starting with +."
        ),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_INPUT_LENGTH)
        kwargs.setdefault("help_text", "With the country code, e.g. +1 415 555 0100.")
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        region = settings.DEFAULT_PHONE_REGION
        try:
            return phone_number_parse(value, region=region)
        except InvalidPhoneNumber:
            code = "invalid_number_with_region" if region else "invalid_number"
            raise ValidationError(self.error_messages[code], code=code) from None


class PhoneChangeForm(forms.Form):
    number = PhoneNumberField(
        label="New phone number",
        error_messages={"required": "Enter the new phone number."},
    )

    error_messages = {"same_number": "This is already your phone number."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_number(self):
        number = self.cleaned_data["number"]
        if str(self.user.phone_number_for_2fa or "") == number:
            raise ValidationError(self.error_messages["same_number"], code="same_number")
        return number
