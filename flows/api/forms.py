"""The shape of the API's input: JSON values or form fields. Flows live in flows.py."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.phone import MAX_INPUT_LENGTH, InvalidPhoneNumber, phone_number_parse

from ..forms import CODE_SEPARATORS

# The proxy contract's name for request_id in some clients.
FIELD_ALIASES = {"requestId": "request_id"}


def with_aliases(data: dict) -> dict:
    """Return `data` with aliased field names under their canonical name."""
    data = dict(data)
    for alias, name in FIELD_ALIASES.items():
        if data.get(name) in (None, "") and alias in data:
            data[name] = data[alias]
    return data


class JsonCharField(forms.CharField):
    """Text; refuses a JSON list, object, number or boolean instead of str()-ing it."""

    default_error_messages = {"invalid": "Enter a valid value."}

    def to_python(self, value):
        if value is not None and value != "" and not isinstance(value, str):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if isinstance(value, str) and not _encodes(value):
            # JSON can carry lone surrogates ("\ud800"), which no text is made of.
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ApiPhoneNumberField(JsonCharField):
    """An international number as a string or a JSON integer, `+` optional; cleans to E.164."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_INPUT_LENGTH)
        super().__init__(**kwargs)

    def to_python(self, value):
        # 14155550100 as a JSON number is the proxy contract's own example;
        # a boolean is an int in Python and is no phone number.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super().to_python(value)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        # Numbers are always international here (no DEFAULT_PHONE_REGION):
        # the contract sends "14155550100", which means +1 415 555 0100.
        if not value.startswith("+"):
            value = f"+{value}"
        try:
            return phone_number_parse(value)
        except InvalidPhoneNumber:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class VerifyRequestForm(forms.Form):
    number = ApiPhoneNumberField()


class VerifyControlForm(forms.Form):
    """A request_id, and optionally the number the client believes it is for."""

    request_id = JsonCharField()
    number = ApiPhoneNumberField(required=False)


class VerifyCheckForm(forms.Form):
    request_id = JsonCharField()
    code = JsonCharField(max_length=20)
    number = ApiPhoneNumberField(required=False)

    field_order = ["request_id", "code", "number"]

    def clean_code(self):
        # Like the web form: a code of the wrong shape can never be right, so
        # it is refused without costing an attempt or reaching the provider.
        code = CODE_SEPARATORS.sub("", self.cleaned_data["code"])
        if not (code.isascii() and code.isdigit() and len(code) == settings.VERIFY_CODE_LENGTH):
            raise ValidationError(self.fields["code"].error_messages["invalid"], code="invalid")
        return code
