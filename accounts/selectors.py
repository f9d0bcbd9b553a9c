"""Reads.

Through the user model's default manager, so that a project's database
routers and custom manager apply to them as to Django's own reads.
"""

from __future__ import annotations

from .models import User


def user_get_by_phone_number(number: str) -> User | None:
    """Return the active user whose phone number is `number` (E.164), if any."""
    return User._default_manager.filter(phone_number_for_2fa=str(number), is_active=True).first()


def phone_number_holder(number: str) -> tuple[int, bool] | None:
    """Return (id, is_active) of the user whose phone number is `number` (E.164), if any."""
    return (
        User._default_manager.filter(phone_number_for_2fa=str(number))
        .values_list("pk", "is_active")
        .first()
    )
