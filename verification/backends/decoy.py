"""Stand-in requests for numbers that cannot log in: the rules of a real one, and no message.

With PASSWORDLESS_SIGNUP off, an unknown number must get exactly the answers a
registered one gets, or the login form tells anyone which numbers have an
account. The flows run such a number through this backend instead of the
provider: one live request per number, three wrong codes, one call, expiry,
all as for a real request, while nothing is sent and the code, random and
never delivered, is known to nobody.
"""

from __future__ import annotations

from .local import LocalCodeBackend


class VerificationBackend(LocalCodeBackend):
    """Deliver nothing."""

    key_prefix = "verification:decoy"

    def deliver(self, number, message, *, channel, code):
        pass
