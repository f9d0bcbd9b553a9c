"""The `request_id` the API hands out: a signed, expiring name for a server-side record.

The record (upstream request id, E.164 number, decoy flag) stays in the shared
cache, like the web flow keeps it in the server-side session. The token is
`TimestampSigner(salt=SALT).sign(handle)`: it carries only a random handle, so
it reveals neither the upstream id, nor the number, nor whether the number can
log in, none of which a signed-but-readable payload could hide. Its signature
refuses forged and altered tokens and its age refuses expired ones, before the
cache or the provider is asked.
"""

from __future__ import annotations

import dataclasses
import secrets
import time

from django.conf import settings
from django.core import signing
from django.core.cache import cache

# The module's path before the split: a new salt would void every token in flight.
SALT = "accounts.api.tokens.request_id"
KEY_PREFIX = "verification:api"
# Real tokens are about 60 characters; anything far longer is refused unread.
MAX_TOKEN_LENGTH = 256


class InvalidToken(Exception):
    """The request_id is forged, altered, expired, or names a verification that is over."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ApiVerification:
    """A verification started through the API, as the server remembers it."""

    handle: str
    request_id: str
    number: str
    # A stand-in for a number that cannot log in (PASSWORDLESS_SIGNUP off):
    # answered like a live request, nothing sent, no code ever right.
    decoy: bool = False
    started_at: float = 0.0
    # When the last code went out (the start, or a next event).
    sent_at: float = 0.0

    @property
    def expires_at(self) -> float:
        return self.started_at + settings.VERIFY_CODE_TTL

    @property
    def cache_key(self) -> str:
        return f"{KEY_PREFIX}:{self.handle}"

    @property
    def limit_key(self) -> str:
        """Return the key its checks are counted under (the web flow uses session keys)."""
        return f"api:{self.handle}"


def _signer() -> signing.TimestampSigner:
    # Built per call: the signer reads SECRET_KEY (and its fallbacks) when made.
    return signing.TimestampSigner(salt=SALT)


def token_issue(
    *,
    request_id: str,
    number: str,
    decoy: bool = False,
    started_at: float | None = None,
    sent_at: float | None = None,
) -> tuple[str, ApiVerification]:
    """Remember a started verification; return the token that names it, and the record.

    `started_at` and `sent_at` default to now; a request adopted from another
    holder keeps its own (its code expires when it was always going to).
    """
    now = time.time()
    verification = ApiVerification(
        handle=secrets.token_urlsafe(18),
        request_id=request_id,
        number=number,
        decoy=decoy,
        started_at=started_at or now,
        sent_at=sent_at or now,
    )
    _save(verification)
    return _signer().sign(verification.handle), verification


def token_record_sent(
    verification: ApiVerification, *, sent_at: float | None = None
) -> ApiVerification:
    """Remember that a code went out again (a next event, now by default); return the record."""
    verification = dataclasses.replace(verification, sent_at=sent_at or time.time())
    _save(verification)
    return verification


def _save(verification: ApiVerification) -> None:
    # The record lives as long as the code: a next event does not extend it.
    timeout = max(1, int(verification.expires_at - time.time()))
    cache.set(verification.cache_key, dataclasses.asdict(verification), timeout)


def token_resolve(token: str) -> ApiVerification:
    """Return the verification `token` names, or raise InvalidToken."""
    # Real tokens are short ASCII; anything else (a lone surrogate from JSON
    # would not even encode for the HMAC) is refused unread.
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("malformed")
    try:
        handle = _signer().unsign(token, max_age=settings.VERIFY_CODE_TTL)
    except signing.SignatureExpired as exc:
        raise InvalidToken("expired") from exc
    except signing.BadSignature as exc:
        raise InvalidToken("bad_signature") from exc
    data = cache.get(f"{KEY_PREFIX}:{handle}")
    if data is None:
        # Checked, cancelled, ended upstream, or the cache lost it.
        raise InvalidToken("over")
    try:
        return ApiVerification(**data)
    except TypeError:
        # Written by another version of this code: the client starts again.
        raise InvalidToken("over") from None


def token_revoke(verification: ApiVerification) -> None:
    """Forget the verification: its token is refused from now on."""
    key = verification.cache_key
    cache.delete(key)
