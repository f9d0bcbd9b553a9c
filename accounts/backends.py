"""Authentication backends."""

from __future__ import annotations

from django.contrib.auth import backends
from django.core.exceptions import ValidationError

from .models import User
from .selectors import user_get_by_id


class ModelBackend(backends.ModelBackend):
    """Django's ModelBackend, finding the user of a session with a written-out SELECT.

    Every page a logged-in person opens reads their user: through the ORM's
    get() that costs about 0.6 ms of CPU, most of it building the query; the
    same read written out (accounts.selectors) about 0.2 ms, measured in
    process. Passwords and permissions are Django's own.
    """

    def get_user(self, user_id):
        try:
            user_id = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = user_get_by_id(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
