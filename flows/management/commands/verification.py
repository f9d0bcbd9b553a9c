"""manage.py verification: send, check, cancel, move on or look up a code by hand; sweep.

For operators checking their provider set-up or helping someone. Goes through
the configured backend (VERIFY_BACKEND) like the site does, without the
site's rate limits, and records each event in the verification log with the
purpose "operator" so that test codes are not counted as traffic.

`sweep`, run from cron every minute, cancels upstream the requests whose code
died on the site unused (flows/abandoned.py); its rows keep the purpose of
the request they end.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from accounts.phone import InvalidPhoneNumber, mask_phone_number, phone_number_parse
from flows.abandoned import BATCH_SIZE, verification_sweep
from flows.process import VerificationProcess
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    TooManyAttempts,
    VerificationEnded,
    VerificationError,
    VerificationExpired,
)
from verificationlog.models import Purpose, VerificationLog

# What each refusal means to an operator, most specific class first.
ERROR_TEXT = [
    (IncorrectCode, "Wrong code."),
    (TooManyAttempts, "Wrong code too many times: the request is over."),
    (
        VerificationExpired,
        "No live request with this id: unknown, expired, cancelled or already verified.",
    ),
    (VerificationEnded, "The request is over."),
    (ConcurrentVerification, "A request to this number is already live."),
    (InvalidNumber, "The provider cannot send to this number."),
    (Throttled, "The provider is throttling requests: try again later."),
    (ActionNotAllowed, "Not possible now."),
    (
        ProviderUnavailable,
        "The provider is unavailable: timeout, network, server error, credentials or account.",
    ),
    (VerificationError, "The provider refused."),
]
ACTION_NOT_ALLOWED_TEXT = {
    "cancel": "Cancel is not possible now (Vonage refuses it in the first 30 seconds "
    "and once the second message is on its way).",
    "next": "No next channel now (the backend has none, or the request already moved on).",
}
# Keys of a search result's events whose value is a code typed by someone
# (Vonage's v1 search lists them) or a phone number.
SECRET_EVENT_KEYS = {"code"}
NUMBER_EVENT_KEYS = {"to", "number", "msisdn", "phone_number"}


class Command(BaseCommand):
    help = (
        "Send, check, cancel, move on or look up a verification through the configured "
        "backend (VERIFY_BACKEND), or sweep: cancel the requests nobody finished. Errors go "
        "to stderr with a non-zero exit code."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="ACTION", title="actions"
        )
        send = actions.add_parser(
            "send",
            help="Send a code to NUMBER and print the request id (the last line of the output).",
        )
        send.add_argument("number", help="Phone number, e.g. +14155550100.")
        check = actions.add_parser(
            "check",
            help="Check CODE against REQUEST_ID. The code stays in your shell history.",
        )
        check.add_argument("request_id")
        check.add_argument("code")
        cancel = actions.add_parser("cancel", help="Stop REQUEST_ID: no further code is sent.")
        cancel.add_argument("request_id")
        following = actions.add_parser(
            "next", help="Move REQUEST_ID to its next channel now (e.g. a voice call)."
        )
        following.add_argument("request_id")
        search = actions.add_parser(
            "search",
            help=(
                "Print what the provider knows of REQUEST_ID: status, number, events, price "
                "(backends that support search only)."
            ),
        )
        search.add_argument("request_id")
        sweep = actions.add_parser(
            "sweep",
            help=(
                "Cancel upstream the requests whose code expired on the site unused, so that "
                "Vonage stops their workflow (no call to someone who walked away). Run it from "
                "cron every minute; prints the counts (nothing with -v 0 unless some failed). "
                "Exits 1 when the provider could not be reached: those are tried again next run."
            ),
        )
        sweep.add_argument(
            "--limit",
            type=int,
            default=BATCH_SIZE,
            help=f"Cancel at most this many requests in this run (default {BATCH_SIZE}).",
        )

    def handle(self, *args, **options):
        """Run one action through the verification process, as an operator."""
        self.verbosity = options["verbosity"]
        self.backend = self._process().provider
        action = options["action"]
        if action == "send":
            self.send(options["number"])
        elif action == "check":
            self.check_code(options["request_id"], options["code"])
        elif action == "cancel":
            self.cancel(options["request_id"])
        elif action == "next":
            self.trigger_next(options["request_id"])
        elif action == "sweep":
            self.sweep(options["limit"])
        else:
            self.search(options["request_id"])

    def send(self, raw_number: str) -> None:
        try:
            number = phone_number_parse(raw_number, region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber:
            raise CommandError(
                "Not a valid phone number. Use international format, e.g. +14155550100."
            ) from None
        try:
            request_id = self._process().start(number=number, purpose=Purpose.OPERATOR).request_id
        except VerificationError as exc:
            raise self._error(exc, "send") from None
        if self.verbosity >= 1:
            self.stdout.write(
                f"Sent a code to {mask_phone_number(number)} with the {self.backend.name} "
                "backend. Request id:"
            )
        self.stdout.write(request_id)

    def check_code(self, request_id: str, code: str) -> None:
        process = self._process(request_id)
        try:
            process.done(process.check(code))
        except VerificationError as exc:
            raise self._error(exc, "check") from None
        result = process.result
        message = "The code is right."
        if result.price:
            message += f" It cost {_price(result.price, result.currency)}."
        self.stdout.write(self.style.SUCCESS(message))

    def cancel(self, request_id: str) -> None:
        try:
            self._process(request_id).cancel()
        except VerificationError as exc:
            raise self._error(exc, "cancel") from None
        self.stdout.write(
            self.style.SUCCESS("Cancelled: no further code will be sent or accepted.")
        )

    def trigger_next(self, request_id: str) -> None:
        try:
            self._process(request_id).call()
        except VerificationError as exc:
            raise self._error(exc, "next") from None
        self.stdout.write(self.style.SUCCESS("Moved to the next channel."))

    def search(self, request_id: str) -> None:
        if not self.backend.supports_search:
            raise CommandError(
                f"The {self.backend.name} backend cannot search requests "
                f"(VERIFY_BACKEND={settings.VERIFY_BACKEND}); its provider keeps no history "
                "to ask."
            )
        try:
            result = self._process().search(request_id)
        except VerificationError as exc:
            raise self._error(exc, "search") from None
        lines = [
            f"Request id: {result.request_id}",
            f"Status: {result.status}",
            f"Number: {mask_phone_number(result.number) if result.number else '-'}",
            f"Price: {_price(result.price, result.currency) if result.price else '-'}",
            "Events:" if result.events else "Events: none",
        ]
        lines += [f"  - {_describe_event(event)}" for event in result.events]
        self.stdout.write("\n".join(lines))

    def sweep(self, limit: int) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        result = verification_sweep(backend=self.backend, limit=limit)
        if result.busy:
            if self.verbosity >= 1:
                self.stdout.write("Another sweep is running: nothing done.")
            return
        if self.verbosity >= 1 or result.failed:
            self.stdout.write(
                f"Abandoned requests: {result.cancelled} cancelled, {result.over} already over, "
                f"{result.failed} failed."
            )
        if result.failed:
            raise CommandError(
                f"{result.failed} abandoned request{'s' if result.failed != 1 else ''} not "
                f"cancelled: the provider is unavailable or throttling ({self.backend.name}). "
                "The next run tries again."
            )

    def _process(self, request_id: str = "") -> VerificationProcess:
        """Return the verification process for an operator, on `request_id` when named."""
        try:
            # The console backend's message is for the person at the
            # terminal, like a log line: on stderr, so stdout carries the
            # command's own output alone (`RID=$(manage.py verification -v 0 send …)`).
            return VerificationProcess.for_operator(
                request_id=request_id, number=_number_of(request_id), stream=sys.stderr
            )
        except (ImportError, ImproperlyConfigured) as exc:
            raise CommandError(
                f"Cannot build the verification backend {settings.VERIFICATION_BACKEND}: {exc}"
            ) from None

    def _error(self, exc: VerificationError, action: str) -> CommandError:
        """Say on stderr what the refusal means, with the backend's own words and status."""
        if isinstance(exc, ActionNotAllowed) and action in ACTION_NOT_ALLOWED_TEXT:
            text = ACTION_NOT_ALLOWED_TEXT[action]
        else:
            text = next(text for cls, text in ERROR_TEXT if isinstance(exc, cls))
        if isinstance(exc, IncorrectCode) and exc.attempts_left is not None:
            text += f" {exc.attempts_left} attempt{'s' if exc.attempts_left != 1 else ''} left."
        if isinstance(exc, ConcurrentVerification) and exc.request_id:
            text += f" Its request id: {exc.request_id}."
        return CommandError(f"{text} ({self.backend.name}: {exc}; status {exc.status})")


def _number_of(request_id: str) -> str:
    """Return the number a request was sent to, as the log remembers it ("" if unknown)."""
    if not request_id:
        return ""
    return (
        VerificationLog.objects.filter(request_id=request_id)
        .exclude(number="")
        .values_list("number", flat=True)
        .first()
        or ""
    )


def _price(price: str, currency: str | None) -> str:
    return f"{price} {currency or ''}".strip()


def _describe_event(event: dict) -> str:
    parts = []
    for key, value in event.items():
        if key.lower() in SECRET_EVENT_KEYS:
            value = "(hidden)"
        elif key.lower() in NUMBER_EVENT_KEYS and value:
            value = mask_phone_number(str(value))
        parts.append(f"{key}={value}")
    return ", ".join(parts) or "(empty)"
