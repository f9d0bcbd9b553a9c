"""System checks: a Vonage backend selected without what it needs stops `manage.py check`.

Registered in VerificationConfig.ready(); runs with `check`, `runserver` and
`migrate`. The backends themselves never fail a page over configuration: they
log and answer "temporarily unavailable".
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

LEGACY_CODE_LENGTHS = (4, 6)
V2_BRAND_MAX = 16  # the SDK's limit (the API's is 18)
LEGACY_BRAND_MAX = 18


def check_verification_backend(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Check that the selected verification backend has the settings it needs."""
    try:
        backend_class = import_string(settings.VERIFICATION_BACKEND)
    except ImportError as exc:
        return [
            Error(
                f"VERIFY_BACKEND names a backend that cannot be imported: {exc}",
                hint="Use console, vonage, vonage-legacy, or the dotted path of a backend class.",
                id="verification.E001",
            )
        ]
    from .backends import vonage, vonage_legacy

    if issubclass(backend_class, vonage_legacy.VerificationBackend):
        return _check_legacy()
    if issubclass(backend_class, vonage.VerificationBackend):
        return _check_v2()
    return []


def _check_v2() -> list[CheckMessage]:
    from vonage_verify import Locale

    from .backends.vonage import CHANNEL_TIMEOUT_MAX, CHANNEL_TIMEOUT_MIN, CHANNELS
    from .backends.vonage_client import voice_fallback_errors

    errors = []
    has_basic = bool(settings.VONAGE_API_KEY and settings.VONAGE_API_SECRET)
    has_application = bool(settings.VONAGE_APPLICATION_ID and settings.VONAGE_PRIVATE_KEY)
    if bool(settings.VONAGE_APPLICATION_ID) != bool(settings.VONAGE_PRIVATE_KEY):
        errors.append(
            Error(
                "VERIFY_BACKEND=vonage has only one of VONAGE_APPLICATION_ID and "
                "VONAGE_PRIVATE_KEY.",
                hint="Set both to authenticate with a JWT, or neither to use the API key.",
                id="verification.E003",
            )
        )
    elif not has_basic and not has_application:
        errors.append(_missing_credentials("vonage", v2=True))
    if has_application:
        errors += _check_private_key()
    workflow = [channel.strip().lower() for channel in settings.VERIFY_WORKFLOW if channel.strip()]
    unknown = [channel for channel in workflow if channel not in CHANNELS]
    if not 1 <= len(workflow) <= 3 or unknown or len(set(workflow)) != len(workflow):
        errors.append(
            Error(
                f"VERIFY_WORKFLOW={','.join(settings.VERIFY_WORKFLOW)} is not a Verify v2 "
                "workflow this site can send.",
                hint=f"One to three different channels among {', '.join(CHANNELS)}, "
                "in order, comma separated (e.g. VERIFY_WORKFLOW=sms,voice).",
                id="verification.E006",
            )
        )
    errors += _check_locale({locale.value for locale in Locale})
    errors += _check_brand(V2_BRAND_MAX)
    errors += _check_timeout()
    errors += voice_fallback_errors(
        alias="vonage",
        minimum=CHANNEL_TIMEOUT_MIN,
        maximum=CHANNEL_TIMEOUT_MAX,
        has_next=len(workflow) > 1,
    )
    return errors


def _check_legacy() -> list[CheckMessage]:
    from vonage_verify_legacy.language_codes import LanguageCode

    from .backends.vonage_client import voice_fallback_errors
    from .backends.vonage_legacy import (
        NEXT_EVENT_WAIT_MAX,
        NEXT_EVENT_WAIT_MIN,
        NEXT_EVENTS,
    )

    errors = []
    if not (settings.VONAGE_API_KEY and settings.VONAGE_API_SECRET):
        errors.append(_missing_credentials("vonage-legacy", v2=False))
    if settings.VERIFY_CODE_LENGTH not in LEGACY_CODE_LENGTHS:
        errors.append(
            Error(
                f"VERIFY_CODE_LENGTH={settings.VERIFY_CODE_LENGTH}, but Verify v1 "
                "(VERIFY_BACKEND=vonage-legacy) sends codes of 4 or 6 digits only.",
                hint="Set VERIFY_CODE_LENGTH=6 (or 4), or use VERIFY_BACKEND=vonage.",
                id="verification.E005",
            )
        )
    if not 1 <= settings.VERIFY_LEGACY_WORKFLOW_ID <= 7:
        errors.append(
            Error(
                f"VERIFY_LEGACY_WORKFLOW_ID={settings.VERIFY_LEGACY_WORKFLOW_ID} is not a "
                "Verify v1 workflow.",
                hint="Use 1 to 7: 1 is SMS then two calls; "
                f"{' and '.join(str(w) for w, n in sorted(NEXT_EVENTS.items()) if not n)} "
                "have no next event.",
                id="verification.E007",
            )
        )
    errors += _check_locale({language.value for language in LanguageCode})
    errors += _check_brand(LEGACY_BRAND_MAX)
    errors += _check_timeout()
    errors += voice_fallback_errors(
        alias="vonage-legacy",
        minimum=NEXT_EVENT_WAIT_MIN,
        maximum=NEXT_EVENT_WAIT_MAX,
        has_next=bool(NEXT_EVENTS.get(settings.VERIFY_LEGACY_WORKFLOW_ID)),
    )
    return errors


def _missing_credentials(alias: str, *, v2: bool) -> Error:
    names = "VONAGE_API_KEY and VONAGE_API_SECRET"
    if v2:
        names += " (or VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY)"
    return Error(
        f"VERIFY_BACKEND={alias} needs Vonage credentials: {names} are not set.",
        hint=f"Set {names} from the Vonage dashboard (API settings), in the environment "
        "or in .env; or use VERIFY_BACKEND=console for development.",
        id="verification.E002",
    )


def _check_private_key() -> list[CheckMessage]:
    from .backends.vonage_client import private_key_pem

    try:
        private_key_pem(settings.VONAGE_PRIVATE_KEY)
    except ValueError as exc:
        return [
            Error(
                str(exc),
                hint="Set VONAGE_PRIVATE_KEY to the path of the application's private.key, "
                "or to its PEM text.",
                id="verification.E004",
            )
        ]
    return []


def _check_locale(supported: set[str]) -> list[CheckMessage]:
    if not settings.VERIFY_LOCALE or settings.VERIFY_LOCALE in supported:
        return []
    return [
        Error(
            f"VERIFY_LOCALE={settings.VERIFY_LOCALE} is not a language this Vonage API takes.",
            hint=f"Use one of {', '.join(sorted(supported))}, or leave it empty.",
            id="verification.E008",
        )
    ]


def _check_brand(maximum: int) -> list[CheckMessage]:
    if 1 <= len(settings.VERIFY_BRAND) <= maximum:
        return []
    return [
        Error(
            f"VERIFY_BRAND is {len(settings.VERIFY_BRAND)} characters; this Vonage API "
            f"takes 1 to {maximum}.",
            hint="Set VERIFY_BRAND (or VONAGE_BRAND_NAME) to a shorter name.",
            id="verification.E009",
        )
    ]


def _check_timeout() -> list[CheckMessage]:
    if settings.VONAGE_TIMEOUT > 0:
        return []
    return [
        Error(
            f"VONAGE_TIMEOUT={settings.VONAGE_TIMEOUT}: the site would wait for Vonage forever.",
            hint="Set VONAGE_TIMEOUT to a number of seconds, e.g. 10.",
            id="verification.E010",
        )
    ]
