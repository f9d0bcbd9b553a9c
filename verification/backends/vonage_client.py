"""What the two Vonage backends share: SDK clients, credentials, and reading Vonage's answers.

The SDK's `HttpClient` is not thread-safe (it mutates shared headers and keeps
`last_response`, which the legacy backend reads), so each thread gets its own
client per configuration, built once and reused across requests. Every client
has an explicit timeout (the SDK's default is to wait forever) and never
re-sends a request by itself: a re-sent start could text the person twice, a
re-sent check could spend one of their three attempts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core import checks
from django.core.cache import cache
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_utils.errors import VonageError

from accounts.phone import mask_phone_number

from ..exceptions import ProviderUnavailable, Throttled
from .base import BaseVerificationBackend

logger = logging.getLogger("verification.vonage")
T = TypeVar("T")

# The SDK logs request headers and bodies (credentials, codes) at DEBUG.
SDK_LOGGERS = ("vonage", "vonage_http_client", "vonage_verify", "vonage_verify_legacy", "urllib3")
# Clients a thread keeps; more only happens when settings change at run time (tests).
MAX_CLIENTS_PER_THREAD = 8
WRONG_CODES_KEY_PREFIX = "verification:vonage:wrong"
# Long enough to outlive any Vonage request (v2: 3 channels of 900 s at most).
WRONG_CODES_TTL = 3600

_threads = threading.local()


@dataclass(frozen=True)
class VonageConfig:
    """Everything that tells one SDK client from another; the key of the per-thread cache."""

    api_host: str
    timeout: float
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)
    application_id: str = ""
    # VONAGE_PRIVATE_KEY as configured: a path to a PEM file, or the PEM text.
    private_key: str = field(default="", repr=False)

    @property
    def uses_jwt(self) -> bool:
        return bool(self.application_id and self.private_key)

    @property
    def has_basic_credentials(self) -> bool:
        return bool(self.api_key and self.api_secret)


def setting(value, name: str):
    """Return `value` when a constructor argument was given, else the setting `name`."""
    return getattr(settings, name) if value is None else value


def private_key_pem(value: str) -> str:
    """Return VONAGE_PRIVATE_KEY (a path or PEM text) as PKCS#8 PEM text, or raise ValueError.

    The SDK takes a path only when it ends in an extension, and PEM text only in
    PKCS#8 form; reading the key here accepts any path and PKCS#1 keys too, and
    fails with a message that names the setting but never shows the key.
    """
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        try:
            text = Path(text).expanduser().read_text()
        except OSError as exc:
            raise ValueError(
                f"VONAGE_PRIVATE_KEY is not PEM text and no readable file: {exc.strerror}"
            ) from None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(
            "VONAGE_PRIVATE_KEY is not an unencrypted PEM private key "
            "(download it again from the Vonage dashboard)"
        ) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def build_client(config: VonageConfig) -> Vonage:
    """Build an SDK client for `config`; raise ValueError when the credentials are unusable."""
    if config.uses_jwt:
        auth = Auth(
            api_key=config.api_key or None,
            api_secret=config.api_secret or None,
            application_id=config.application_id,
            private_key=private_key_pem(config.private_key),
        )
    else:
        auth = Auth(api_key=config.api_key, api_secret=config.api_secret)
    options = {"max_retries": 0, "pool_connections": 1, "pool_maxsize": 1}
    if config.api_host:
        options["api_host"] = config.api_host
    # pool_maxsize=1 also caps the SDK's own re-send loop after RemoteDisconnected
    # at one attempt. HttpClientOptions types the timeout as whole seconds, but
    # requests takes fractions: model_copy sets it without that validation.
    validated = HttpClientOptions(**options).model_copy(update={"timeout": config.timeout})
    return Vonage(auth, validated)


def client_for(config: VonageConfig) -> Vonage:
    """Return this thread's SDK client for `config`, building it on first use."""
    clients = _threads.__dict__.setdefault("clients", {})
    client = clients.get(config)
    if client is None:
        if len(clients) >= MAX_CLIENTS_PER_THREAD:
            clients.clear()
        client = clients[config] = build_client(config)
    return client


def quiet_sdk_loggers() -> None:
    """Keep the SDK's loggers at INFO or above, whatever the logging configuration says.

    settings.LOGGING already does this; checking before each call keeps a
    later `logging` change (a debugging session, a test) from printing
    credentials and codes.
    """
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.getEffectiveLevel() < logging.INFO:
            sdk_logger.setLevel(logging.INFO)


def json_body(response) -> dict:
    """Return a response's JSON object body, or {} when there is none or it does not parse."""
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


_LONG_DIGITS = re.compile(r"\d{4,}")


def scrub(text: object, limit: int = 120) -> str:
    """Return upstream text fit for a log line: no digit runs (codes, numbers), bounded length."""
    return _LONG_DIGITS.sub("…", " ".join(str(text or "").split()))[:limit]


def wrong_code_attempts_left(request_id: str) -> int | None:
    """Count a wrong code for `request_id`; return the attempts Vonage still allows.

    Neither API says how many attempts remain; both kill a request after
    VERIFY_MAX_WRONG_CODES wrong codes, so the count is kept here, in the cache
    every process shares. None when the count says none are left but Vonage
    still accepts codes: better no number than a wrong one.
    """
    key = f"{WRONG_CODES_KEY_PREFIX}:{request_id}"
    cache.add(key, 0, WRONG_CODES_TTL)
    try:
        wrong = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, WRONG_CODES_TTL)
        wrong = 1
    left = settings.VERIFY_MAX_WRONG_CODES - wrong
    return left if left > 0 else None


def forget_wrong_codes(request_id: str) -> None:
    """Drop the wrong-code count of a request that is over; never fails.

    It runs after Vonage answered: a cache outage here must not turn a code
    Vonage just accepted into an error (the retry would hear "already
    verified"). A count left behind expires with WRONG_CODES_TTL.
    """
    with contextlib.suppress(Exception):
        cache.delete(f"{WRONG_CODES_KEY_PREFIX}:{request_id}")


def voice_fallback_seconds(value: int | None = None) -> int:
    """Return `value`, else VERIFY_VOICE_FALLBACK_AFTER, in seconds; 0 when the fallback is off.

    The seconds after which Vonage moves a request on to its next channel (the
    call) by itself. Off, the call only comes when the person asks for it.
    """
    return max(0, int(setting(value, "VERIFY_VOICE_FALLBACK_AFTER") or 0))


def voice_fallback_errors(
    *, alias: str, minimum: int, maximum: int, has_next: bool
) -> list[checks.CheckMessage]:
    """Check VERIFY_VOICE_FALLBACK_AFTER against what the API `alias` takes.

    Called by `verification.checks` for the selected Vonage backend.
    """
    seconds = settings.VERIFY_VOICE_FALLBACK_AFTER
    if seconds == 0:
        return []
    off = "or 0 to call only when the person asks for it (Call me instead)"
    if not minimum <= seconds <= maximum:
        return [
            checks.Error(
                f"VERIFY_VOICE_FALLBACK_AFTER={seconds}, but VERIFY_BACKEND={alias} waits "
                f"{minimum} to {maximum} seconds before the next channel.",
                hint=f"Set it between {minimum} and {maximum}, {off}.",
                id="verification.E020",
            )
        ]
    if not has_next:
        return [
            checks.Warning(
                f"VERIFY_VOICE_FALLBACK_AFTER={seconds} has no effect: the workflow has no "
                "channel after the first.",
                hint="Add a voice channel to the workflow, or set it to 0.",
                id="verification.W020",
            )
        ]
    if seconds >= settings.VERIFY_CODE_TTL:
        return [
            checks.Warning(
                f"VERIFY_VOICE_FALLBACK_AFTER={seconds} is not shorter than VERIFY_CODE_TTL="
                f"{settings.VERIFY_CODE_TTL}: the code is dead on the site before Vonage calls.",
                hint=f"Set it below VERIFY_CODE_TTL, {off}.",
                id="verification.W021",
            )
        ]
    return []


CREDENTIALS_HINT = (
    "Check VONAGE_API_KEY and VONAGE_API_SECRET (or VONAGE_APPLICATION_ID and "
    "VONAGE_PRIVATE_KEY) and the account's balance and status in the Vonage dashboard."
)


class VonageBackend(BaseVerificationBackend):
    """Calls through the SDK, with network failures and account problems translated.

    Subclasses build the SDK requests and translate each API's own refusals
    in `translate()`.
    """

    supports_next = True
    # Vonage refuses a cancel in the first 30 seconds of a request, and after
    # its second event.
    cancel_not_before = 30
    cancel_refused_after_next = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        application_id: str | None = None,
        private_key: str | None = None,
        api_host: str | None = None,
        timeout: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = VonageConfig(
            api_host=setting(api_host, "VONAGE_API_HOST"),
            timeout=float(setting(timeout, "VONAGE_TIMEOUT")),
            api_key=setting(api_key, "VONAGE_API_KEY"),
            api_secret=setting(api_secret, "VONAGE_API_SECRET"),
            application_id=setting(application_id, "VONAGE_APPLICATION_ID"),
            private_key=setting(private_key, "VONAGE_PRIVATE_KEY"),
        )

    @property
    def label(self) -> str:
        """Return the name operators know the backend by (VERIFY_BACKEND's value)."""
        return self.name.replace("_", "-")

    def credentials_missing(self) -> str | None:
        """Return what is missing for this API to authenticate, or None."""
        raise NotImplementedError("subclasses of VonageBackend must override credentials_missing()")

    def translate(self, action: str, exc: VonageError, client: Vonage, context: dict):
        """Return the VerificationError for an SDK error, or None when it is unexpected."""
        raise NotImplementedError("subclasses of VonageBackend must override translate()")

    def call(self, action: str, operation: Callable[[Vonage], T], **context) -> T:
        """Run `operation` with this thread's client; raise VerificationError on any failure."""
        quiet_sdk_loggers()
        client = self.client(action, context)
        try:
            return operation(client)
        except VonageError as exc:
            error = self.translate(action, exc, client, context)
            if error is None:
                error = self.unexpected(action, exc, context)
            raise error from exc
        except requests.Timeout as exc:
            self.log_unavailable(action, f"no answer within {self.config.timeout:g} s", context)
            raise ProviderUnavailable("timeout") from exc
        except requests.RequestException as exc:
            # Refused, reset or dropped connections, TLS failures.
            self.log_unavailable(action, f"network error ({type(exc).__name__})", context)
            raise ProviderUnavailable("network error") from exc
        except (ValueError, TypeError, KeyError) as exc:
            # A 2xx answer whose body is not what the API documents: the SDK
            # fails parsing it (pydantic's ValidationError is a ValueError).
            self.log_unavailable(action, "an answer that does not parse", context)
            raise ProviderUnavailable("unparseable answer") from exc

    def client(self, action: str, context: dict) -> Vonage:
        """Return this thread's SDK client; ProviderUnavailable when it cannot be built."""
        missing = self.credentials_missing()
        if missing:
            self.log_account_problem(action, f"{missing} not set", context)
            raise ProviderUnavailable("no credentials")
        try:
            return client_for(self.config)
        except (ValueError, VonageError) as exc:
            # VonageError: the SDK refusing the credentials' shape or the key.
            self.log_account_problem(action, error_summary(exc), context)
            raise ProviderUnavailable("unusable credentials") from exc

    def http_error(self, action: str, exc: HttpRequestError, context: dict):
        """Translate an HTTP error every Vonage API answers alike, or return None."""
        status = exc.response.status_code
        body = json_body(exc.response)
        context = {**context, "http_status": status, "upstream_id": upstream_id(body)}
        if status == 429:
            logger.warning("%s %s throttled by Vonage%s", self.label, action, describe(context))
            return Throttled("rate limited")
        if status in (401, 402, 403):
            what = {401: "credentials refused", 402: "low balance", 403: "forbidden"}[status]
            self.log_account_problem(action, what, context, title=body.get("title"))
            return ProviderUnavailable(what)
        if status >= 500:
            self.log_unavailable(action, f"server error {body.get('title') or ''}".strip(), context)
            return ProviderUnavailable("server error")
        return None

    def unexpected(self, action: str, exc: Exception, context: dict) -> ProviderUnavailable:
        """Log an answer no rule covers, for the operator, and call it unavailable."""
        response = getattr(exc, "response", None)
        body = json_body(response)
        if response is not None:
            context = {**context, "http_status": response.status_code}
        context = {"upstream_id": upstream_id(body), **context}
        # Parameter names only: their reasons may quote the values sent.
        parameters = body.get("invalid_parameters") or []
        names = [str(p.get("name")) for p in parameters if isinstance(p, Mapping)]
        what = f"unexpected answer{' about ' + ', '.join(names) if names else ''}"
        self.log_account_problem(
            action,
            what,
            context,
            title=body.get("title") or body.get("error_text"),
            hint="Look the upstream id up with Vonage support, or check the settings.",
        )
        return ProviderUnavailable("unexpected answer")

    def configuration_error(self, action: str, exc: Exception, context: dict):
        """Log settings the SDK refuses, naming the fields only, and return ProviderUnavailable."""
        logger.error(
            "%s %s not sent: the SDK refuses the configuration (%s)%s. "
            "`manage.py check` names the setting to fix.",
            self.label,
            action,
            error_summary(exc),
            describe(context),
        )
        return ProviderUnavailable("invalid configuration")

    def log_account_problem(
        self, action: str, what: str, context: dict, *, title=None, hint=CREDENTIALS_HINT
    ) -> None:
        """Log, at ERROR, a refusal only the operator can fix (credentials, balance, account)."""
        detail = f" ({scrub(title)})" if title else ""
        logger.error(
            "%s %s refused: %s%s%s. %s", self.label, action, what, detail, describe(context), hint
        )

    def log_unavailable(self, action: str, what: str, context: dict) -> None:
        """Log, at WARNING, a failure that a retry may get past."""
        logger.warning("%s %s failed: %s%s", self.label, action, what, describe(context))


def error_summary(exc: Exception) -> str:
    """Describe an exception for a log line: pydantic's by field names, never their values."""
    if hasattr(exc, "errors"):
        return ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
    return scrub(exc, 200)


def upstream_id(body: Mapping) -> str:
    """Return the id Vonage gave its answer (v2 `instance`, v1 `request_id`), or ""."""
    return str(body.get("instance") or body.get("request_id") or "")


def describe(context: Mapping) -> str:
    """Format call context for a log line: number masked, never a code or credential."""
    parts = []
    if context.get("http_status"):
        parts.append(f"http_status={context['http_status']}")
    if context.get("status"):
        parts.append(f"status={context['status']}")
    parts.append(f"upstream_id={context.get('upstream_id') or '-'}")
    if context.get("number"):
        parts.append(f"number={mask_phone_number(context['number'])}")
    return " " + " ".join(parts)
