from __future__ import annotations

import sys

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth import get_user_model


class PhoneAccountAdapter(DefaultAccountAdapter):
    def send_verification_code_sms(self, user, phone, code, **kwargs):
        sys.stdout.write(f"[sms to {phone}] code: {code}\n")
        sys.stdout.flush()

    def get_phone(self, user):
        return (user.username, True) if user.username.startswith("+") else None

    def set_phone(self, user, phone, verified):
        user.username = phone
        user.save(update_fields=["username"])

    def set_phone_verified(self, user, phone):
        pass

    def get_user_by_phone(self, phone):
        return get_user_model().objects.filter(username=phone).first()
