"""Reads."""

from __future__ import annotations

from .models import User


def user_get_by_phone_number(number: str) -> User | None:
    """Return the active user whose phone number is `number` (E.164), if any."""
    return User.objects.filter(phone_number_for_2fa=number, is_active=True).first()
