"""The verification each phone number has on its way, shared by every session and the API.

Vonage sends one code per number at a time, and every code costs money. A
person who asks again for a number whose code is still on its way (a double
click, a second tab, the app and the site) gets that request back instead of
a refusal or a second SMS: it is *adopted*. This is safe because the code is
still required: the provider's three-wrong-codes rule, the per-number
wrong-code cap and the check limits count against the request, whichever
session or token holds it.

One record per number lives in the default cache (shared by every process),
for as long as the code lives:

    {"request_id", "step", "decoy", "started_at", "sent_at"}

`step` is a digest of what the code will approve (purpose, user, step-up
action and its arguments): a request is adopted only for the very same step,
never for another (a code asked for to remove a phone must not approve a
password slipped into another session). While a start is on its way upstream
the record is a claim, `{"claim": token}`, so that a second start for the
number waits for the first instead of reaching the provider too.

Stand-in requests (decoys, for numbers that cannot log in) have records of
their own, under another prefix: they behave alike, and never meet the real
requests of the same number, which would tell that the number has an account.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache

from verificationlog.models import Purpose

KEY_PREFIX = "verification:live"
# How often a start that found another one under way looks again.
POLL_SECONDS = 0.05
# How long a request may stay live at the provider once the site no longer
# takes its code: Verify v2 waits up to 900 s per channel, two channels. Its
# record is kept that long, so that the next start for the number can cancel
# it instead of meeting the provider's one-request-per-number refusal.
STALE_SECONDS = 1800


@dataclasses.dataclass(frozen=True)
class LiveRequest:
    """A request this site started for a number, whose code may still be typed."""

    request_id: str
    step: str
    decoy: bool
    started_at: float
    sent_at: float

    @property
    def expires_at(self) -> float:
        return self.started_at + settings.VERIFY_CODE_TTL


class Claim(NamedTuple):
    """What a start found for its number: a live request to adopt, or the right to start."""

    live: LiveRequest | None
    # Set when the caller may start: it must save or release the claim.
    token: str = ""
    # A request of this site whose code the site no longer takes, but which
    # may still be live at the provider: cancel it before starting.
    stale_request_id: str = ""


class StartUnderWay(Exception):
    """Another start for the number is waiting on the provider and did not finish in time."""


def step_digest(
    *,
    purpose: str,
    user_id: int | None,
    action: str = "",
    new_number: str = "",
    password_hash: str = "",
) -> str:
    """Return what a code approves, as a digest: equal digests may share one request.

    A login through the pages and through the API approve the same thing
    (this person holds this number), so either adopts the other's request.
    """
    if purpose == Purpose.API:
        purpose = Purpose.LOGIN
    text = "\x1f".join([purpose, str(user_id or ""), action, new_number, password_hash])
    return hashlib.sha256(text.encode()).hexdigest()


def _key(number: str, *, decoy: bool) -> str:
    return f"{KEY_PREFIX}:{'decoy' if decoy else 'real'}:{number}"


def _claim_seconds() -> int:
    # Longer than the slowest start: a provider timeout, plus the decoy's pause.
    return int(getattr(settings, "VONAGE_TIMEOUT", 10)) + 5


def live_request_get(number: str, *, decoy: bool) -> LiveRequest | None:
    """Return the number's live request, or None when it has none (or only a claim)."""
    data = cache.get(_key(number, decoy=decoy))
    return _load(data)


def _load(data) -> LiveRequest | None:
    if not isinstance(data, dict) or "request_id" not in data:
        return None
    try:
        live = LiveRequest(**data)
    except TypeError:
        # Written by another version of this code.
        return None
    if live.expires_at <= time.time():
        return None
    return live


def live_request_claim(number: str, *, decoy: bool) -> Claim:
    """Return the number's live request, or claim the number for a new start.

    `Claim.live` is the request to adopt; otherwise the caller holds the
    claim (`Claim.token`) and must either save its new request
    (`live_request_save`) or give the claim back (`live_request_release`).
    A claim held by another start is waited on; StartUnderWay when it is
    still held after the longest a start may take.
    """
    key = _key(number, decoy=decoy)
    token = secrets.token_hex(8)
    # Given up before the claim lapses: a claim still held then is a start
    # stuck upstream, and a second one would only meet it there. Two seconds
    # early, because the database cache keeps expiry times to the second and
    # may let a claim lapse up to a second before its timeout.
    deadline = time.monotonic() + _claim_seconds() - 2
    while True:
        # add() is atomic in every cache the site supports: of two starts
        # racing for one number, one claims it and the other waits.
        if cache.add(key, {"claim": token}, _claim_seconds()):
            return Claim(None, token)
        data = cache.get(key)
        live = _load(data)
        if live is not None:
            return Claim(live)
        if not isinstance(data, dict) or "claim" not in data:
            # An ended, expired or unreadable record: take its place. Two
            # starts may both get here; the provider's own one-request-per-
            # number rule then refuses the second.
            cache.set(key, {"claim": token}, _claim_seconds())
            stale = data.get("request_id", "") if isinstance(data, dict) else ""
            return Claim(None, token, stale_request_id=str(stale))
        if time.monotonic() >= deadline:
            raise StartUnderWay
        time.sleep(POLL_SECONDS)


def live_request_save(number: str, live: LiveRequest) -> None:
    """Remember `live` as the number's request: adoptable until its code expires,
    then known as stale while the provider may still hold it."""
    timeout = max(1, int(live.expires_at - time.time())) + STALE_SECONDS
    cache.set(_key(number, decoy=live.decoy), dataclasses.asdict(live), timeout)


def live_request_release(number: str, *, decoy: bool, token: str) -> None:
    """Give back a claim whose start failed, so that the next start may try."""
    key = _key(number, decoy=decoy)
    data = cache.get(key)
    if isinstance(data, dict) and data.get("claim") == token:
        cache.delete(key)


def live_request_sent(number: str, *, decoy: bool, request_id: str, sent_at: float) -> None:
    """Record that the code of `request_id` went out again (a call) at `sent_at`."""
    live = live_request_get(number, decoy=decoy)
    if live is not None and live.request_id == request_id:
        live_request_save(number, dataclasses.replace(live, sent_at=sent_at))


def live_request_end(number: str, *, decoy: bool, request_id: str) -> None:
    """Forget `request_id` as the number's request: it was used, ended or cancelled."""
    key = _key(number, decoy=decoy)
    data = cache.get(key)
    if isinstance(data, dict) and data.get("request_id") == request_id:
        cache.delete(key)


def _verified_key(request_id: str, holder: str) -> str:
    digest = hashlib.sha256(f"{request_id}\x1f{holder}".encode()).hexdigest()
    return f"{KEY_PREFIX}:verified:{digest}"


def _finishing_key(request_id: str) -> str:
    return f"{KEY_PREFIX}:finishing:{request_id}"


def live_request_verified(request_id: str, *, holder: str) -> None:
    """Remember that the provider accepted the code of `request_id` typed in session `holder`,
    and that the request it answered is now finishing what the code was for.

    Kept for that session alone: another session that adopted the request
    never finishes on the strength of a code it was not typed in. The request
    the provider answered is the one that finishes: the record carries its
    right to, for the longest a finish may take or until it gives the right
    back (live_request_finishing_failed); a retry takes it then
    (live_request_finishing). The record is left to expire once what the
    code was for is done, so that the same code posted again meanwhile finds
    it taken rather than free; the storage that held the code forgets it.
    """
    finishing_until = time.time() + _claim_seconds()
    cache.set(_verified_key(request_id, holder), finishing_until, settings.VERIFY_CODE_TTL)


def live_request_was_verified(request_id: str, *, holder: str) -> float | None:
    """Return None unless session `holder`'s code for `request_id` was accepted and not yet used;
    else until when the request that is finishing it holds the right to (past: none does)."""
    finishing_until = cache.get(_verified_key(request_id, holder))
    if finishing_until is None:
        return None
    # A float, unless written by another version of this code (True): nobody finishing.
    return finishing_until if isinstance(finishing_until, float) else 0.0


def live_request_finishing(request_id: str, *, finishing_until: float | None) -> bool:
    """Take the right to finish the verified `request_id` again, for a retry; False while
    another request has it.

    `finishing_until` is what live_request_was_verified returned for the
    code, read after the caller learnt it was accepted: the request the
    provider answered holds the right until then. Retries take it one at a
    time.
    """
    if finishing_until is not None and finishing_until > time.time():
        return False
    return cache.add(_finishing_key(request_id), True, _claim_seconds())


def live_request_finishing_failed(request_id: str, *, holder: str = "") -> None:
    """Give the right to finish back, for a retry: finishing failed.

    `holder` is the session whose accepted code it is: its record says
    nobody is finishing it now.
    """
    if holder:
        cache.set(_verified_key(request_id, holder), 0.0, settings.VERIFY_CODE_TTL)
    cache.delete(_finishing_key(request_id))
