"""The contract every verification backend fulfils."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings


@dataclass(frozen=True)
class CheckResult:
    """A correct code. Fields the provider does not report stay None."""

    request_id: str
    event_id: str | None = None
    price: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """What a provider knows of a request, for operators."""

    request_id: str
    status: str
    number: str | None = None
    price: str | None = None
    currency: str | None = None
    events: list[dict] = field(default_factory=list)


class BaseVerificationBackend:
    """Send a one-time code to a phone number and check what the person types.

    Numbers are E.164 strings ("+14155550100"). Failures raise the exceptions
    in `verification.exceptions`. Constructor arguments override the
    settings they are named after.
    """

    # Whether trigger_next() can move the request to another channel (a call).
    supports_next = False
    # Whether search() is implemented.
    supports_search = False
    # How many times trigger_next() may move a request on (calls after the SMS).
    next_events = 0
    # Seconds after a start during which the provider refuses a cancel.
    cancel_not_before = 0
    # Whether the provider refuses a cancel once a call (the next event) was made.
    cancel_refused_after_next = False

    def __init__(self, *, brand=None, code_length=None, code_ttl=None, **kwargs):
        self.brand = brand or settings.VERIFY_BRAND
        self.code_length = code_length or settings.VERIFY_CODE_LENGTH
        self.code_ttl = code_ttl or settings.VERIFY_CODE_TTL

    @property
    def name(self) -> str:
        """Return the short name of the backend, for logs."""
        return self.__module__.rsplit(".", 1)[-1]

    def start(self, number: str) -> str:
        """Send a code to `number` and return the new request id."""
        raise NotImplementedError("subclasses of BaseVerificationBackend must override start()")

    def check(self, request_id: str, code: str) -> CheckResult:
        """Check `code` against the request; return a CheckResult when it is right."""
        raise NotImplementedError("subclasses of BaseVerificationBackend must override check()")

    def cancel(self, request_id: str) -> None:
        """Stop the request so that no further code is sent or accepted."""
        raise NotImplementedError("subclasses of BaseVerificationBackend must override cancel()")

    def trigger_next(self, request_id: str) -> None:
        """Move the request to its next channel now (e.g. a voice call)."""
        from ..exceptions import ActionNotAllowed

        raise ActionNotAllowed("this backend has no next channel", request_id=request_id)

    def search(self, request_id: str) -> SearchResult:
        """Return what the provider knows of the request."""
        raise NotImplementedError(f"the {self.name} backend does not support search")
