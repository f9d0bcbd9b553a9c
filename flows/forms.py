"""The shape of what people type. Flows live in services."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.forms import PhoneNumberField

CODE_SEPARATORS = re.compile(r"[\s-]")


class PhoneLoginForm(forms.Form):
    number = PhoneNumberField(
        label="Phone number",
        error_messages={"required": "Enter your phone number."},
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        error_messages={"required": "Enter the code from the message."},
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )

    error_messages = {
        "invalid_code": "Enter the %(length)d-digit code from the message, digits only.",
    }

    def clean_code(self):
        code = CODE_SEPARATORS.sub("", self.cleaned_data["code"])
        length = settings.VERIFY_CODE_LENGTH
        if not (code.isascii() and code.isdigit() and len(code) == length):
            raise ValidationError(
                self.error_messages["invalid_code"], code="invalid_code", params={"length": length}
            )
        return code
