"""The sweep: cancel upstream the requests this site started and nobody finished.

A code dies on the site VERIFY_CODE_TTL seconds after its start, but the
provider's workflow goes on until it is cancelled: Vonage would still place
its call (by default 15 minutes after the SMS, see VERIFY_VOICE_FALLBACK_AFTER)
to a person who walked away. The flows cancel what they know is left behind
(another number, a password login, a logout); what remains are requests whose
code simply expired in a session nobody came back to. `manage.py verification
sweep`, run from cron every minute, finds them in the verification log and
cancels them.

A request is abandoned when the log has its start, older than the code's life
(plus GRACE), younger than that plus WINDOW, and nothing that ended it: a right
code, an expiry, too many wrong codes, a cancel, or a later start for the same
number (the provider keeps one live request per number, so a later start means
this one was over; a resend cancels the old request and logs only the new one).
Each is cancelled through the configured backend and the outcome written to
the log, so that it is looked at once:

- cancelled: a `cancelled` row, detail "abandoned";
- over already, or the provider refuses the cancel (the call was made, say):
  an `expired` row, detail "abandoned <status>": nothing more to do;
- provider unavailable or throttling: nothing written, the next run tries again.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.phone import mask_phone_number
from verification import BaseVerificationBackend, get_backend
from verification.exceptions import ProviderUnavailable, Throttled, VerificationError
from verificationlog.events import Outcome, verification_event
from verificationlog.models import VerificationLog

from .live_requests import live_request_end

logger = logging.getLogger(__name__)

# The outcomes after which a request is over: nothing left to cancel.
ENDINGS = (Outcome.SUCCEEDED, Outcome.EXPIRED, Outcome.TOO_MANY_ATTEMPTS, Outcome.CANCELLED)
# The detail of the rows the sweep writes.
ABANDONED_DETAIL = "abandoned"
# Past the code's death: a check that began just before it may still be on its
# way to the provider, and the servers' clocks may differ by a little.
GRACE = datetime.timedelta(seconds=30)
# Older starts are over at the provider whatever happens: a Verify v2 workflow
# lasts at most three channels of 15 minutes, a v1 request `pin_expiry`
# (15 minutes here). Nothing older is asked about.
WINDOW = datetime.timedelta(hours=1)
# Requests cancelled per run, oldest first; more wait for the next run.
BATCH_SIZE = 100
# A run stops after this many provider failures: a provider that is down
# would make each further call wait VONAGE_TIMEOUT for nothing.
MAX_FAILURES = 3
# A run takes no new request after this long, so that runs a minute apart do
# not overlap; the rest waits for the next run.
RUN_SECONDS = 45
# Held while a sweep runs (one at a time, even with cron on every app server).
LOCK_KEY = "verification:sweep"


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    cancelled: int = 0
    # Over at the provider already, or its cancel refused: recorded, not retried.
    over: int = 0
    # The provider could not be reached: left for the next run.
    failed: int = 0
    # Another sweep was running: this one did nothing.
    busy: bool = False


def abandoned_requests(*, backend_name: str, now: datetime.datetime, limit: int = BATCH_SIZE):
    """Return the abandoned requests started through `backend_name`, oldest first, in one query.

    Each is a dict of the fields of its start row: request_id, number,
    purpose, user_id, backend. The subqueries look for rows of the same
    number, which the log's (number, created_at) index finds: every row of a
    request carries its number.
    """
    code_dead = now - datetime.timedelta(seconds=settings.VERIFY_CODE_TTL) - GRACE
    rows = VerificationLog.objects.all()
    same_number = rows.filter(number=OuterRef("number"))
    same_request = same_number.filter(request_id=OuterRef("request_id"))
    return list(
        rows.filter(
            outcome=Outcome.STARTED,
            backend=backend_name,
            created_at__lte=code_dead,
            created_at__gt=code_dead - WINDOW,
        )
        # Decoys (nothing was sent) are logged without a backend or request id.
        .exclude(request_id="")
        .filter(
            # The request's first start: a call asked for later is a start
            # row of the same request, and its code died with the first.
            ~Exists(
                same_request.filter(outcome=Outcome.STARTED, created_at__lt=OuterRef("created_at"))
            ),
            ~Exists(same_request.filter(outcome__in=ENDINGS)),
            # Replaced by a later request to the number (a resend, a new login):
            # the provider would not have started that one while this one lived.
            ~Exists(
                same_number.filter(
                    outcome=Outcome.STARTED,
                    backend=OuterRef("backend"),
                    created_at__gt=OuterRef("created_at"),
                )
                .exclude(request_id="")
                .exclude(request_id=OuterRef("request_id"))
            ),
        )
        .order_by("created_at", "pk")
        .values("request_id", "number", "purpose", "user_id", "backend")[:limit]
    )


def verification_sweep(
    *,
    now: datetime.datetime | None = None,
    backend: BaseVerificationBackend | None = None,
    limit: int = BATCH_SIZE,
) -> SweepResult:
    """Cancel upstream the requests whose code died on the site unused; say what happened.

    At most `limit` requests per run. Runs one at a time: while another
    sweep holds the lock, this one does nothing (`busy`).
    """
    token = secrets.token_hex(8)
    if not cache.add(LOCK_KEY, token, RUN_SECONDS + _call_seconds() + 15):
        return SweepResult(busy=True)
    try:
        return _sweep(now=now or timezone.now(), backend=backend or get_backend(), limit=limit)
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def _sweep(*, now: datetime.datetime, backend: BaseVerificationBackend, limit: int) -> SweepResult:
    counts = {"cancelled": 0, "over": 0, "failed": 0}
    deadline = time.monotonic() + RUN_SECONDS
    for row in abandoned_requests(backend_name=backend.name, now=now, limit=limit):
        if counts["failed"] >= MAX_FAILURES or time.monotonic() >= deadline:
            break
        event = {
            "purpose": row["purpose"],
            "number": row["number"],
            "backend": row["backend"],
            "request_id": row["request_id"],
            "user_id": row["user_id"],
        }
        try:
            backend.cancel(row["request_id"])
        except (ProviderUnavailable, Throttled) as exc:
            counts["failed"] += 1
            logger.warning(
                "abandoned request not cancelled, tried again next run: number=%s error=%s",
                mask_phone_number(row["number"]),
                type(exc).__name__,
            )
            continue
        except VerificationError as exc:
            # Over already (expired, used elsewhere) or not cancellable any
            # more (the call was made): either way, nothing left to do.
            counts["over"] += 1
            verification_event(
                None,
                outcome=Outcome.EXPIRED,
                detail=f"{ABANDONED_DETAIL} {exc.status}",
                **event,
            )
        else:
            counts["cancelled"] += 1
            verification_event(None, outcome=Outcome.CANCELLED, detail=ABANDONED_DETAIL, **event)
        live_request_end(row["number"], decoy=False, request_id=row["request_id"])
    return SweepResult(**counts)


def _call_seconds() -> int:
    # The longest one provider call may take, past the run's deadline.
    return int(getattr(settings, "VONAGE_TIMEOUT", 10)) + 1
