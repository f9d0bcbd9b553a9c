"""The provider fails: the site fails closed, loses nothing, and leaks nothing.

An attacker who can make the provider fail (flood it, time a request to its
outage) hopes that an error during the check lets the login through, or that
the error page shows what it should not: the provider's own error text, a
credential, the code. The person whose check failed for an upstream reason
keeps their verification and the same code works once the provider is back.

Two layers: the recording backend raises each provider outcome on demand, and
the real SDK talks HTTPS to the Vonage emulator (tests/emulator) answering
with 5xx, 429, timeouts, dropped and refused connections, HTML bodies and
every documented v1 status, through the pages.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY

from flows.views import MESSAGES
from tests.emulator.server import FAULT_DETAILS, FAULT_STATUS, LEGACY_TEXTS, Fault
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    VerificationError,
)
from verificationlog.models import Outcome, VerificationLog

from ..conftest import NUMBER, OTHER_NUMBER, last_code, messages_of, pending, start_login
from .conftest import api_endpoints, attacker, page_text

pytestmark = pytest.mark.django_db

# What a backend's exception might carry: never to be shown to anyone.
LEAK = "upstream said: api_secret=s3cr3t-0f-the-operator body={'error_text': 'Partner quota'}"


def site_wording() -> list[re.Pattern]:
    """Return the site's own messages (flows.views.MESSAGES) as patterns."""
    placeholder = re.compile(r"%\\\(\w+\\\)s")
    return [
        re.compile(placeholder.sub(".+?", re.escape(template))) for template in MESSAGES.values()
    ]


CHECK_FAILURES = [
    ProviderUnavailable(LEAK),
    Throttled(LEAK),
    VerificationError(LEAK),
    ActionNotAllowed(LEAK),
    ConcurrentVerification(LEAK),
    InvalidNumber(LEAK),
]


class Shown(str):
    """The page a person sees after a response, with the messages on it."""

    messages: list[str]


def shown(browser, response) -> Shown:
    """Return what the person sees after `response`: the page it leads to, and its messages."""
    if response.status_code == 302:
        response = browser.get(response["Location"])
    text = Shown(page_text(response))
    text.messages = messages_of(response)
    return text


def assert_clear_and_quiet(text: Shown, *secrets: str) -> None:
    """Assert that the page says what went wrong in the site's words, and nothing else."""
    wording = site_wording()
    said = [message for message in text.messages if not message.startswith("We sent a code")]
    assert said or 'class="error' in text, "no message says what went wrong"
    for message in text.messages:
        assert any(pattern.fullmatch(message) for pattern in wording), message
    for secret in ("s3cr3t", "Partner quota", "upstream said", "Traceback", *secrets):
        assert secret not in text


@pytest.mark.parametrize("failure", CHECK_FAILURES, ids=lambda exc: type(exc).__name__)
def test_an_error_during_the_check_logs_nobody_in(outbox, upstream, user, logins, failure):
    browser = attacker()
    start_login(browser)
    code = last_code(outbox)
    upstream.faults["check"] = failure

    response = browser.post("/verify/", {"code": code})

    assert logins == []
    assert browser.session.get(SESSION_KEY) is None
    assert_clear_and_quiet(shown(browser, response), code)


def test_nothing_is_lost_when_the_check_fails_upstream(outbox, upstream, user, logins):
    browser = attacker()
    start_login(browser)
    code = last_code(outbox)
    before = pending(browser)
    upstream.faults["check"] = ProviderUnavailable(LEAK)

    response = browser.post("/verify/", {"code": code}, follow=True)

    assert "Nothing was lost" in " ".join(messages_of(response))
    assert pending(browser) == before
    del upstream.faults["check"]
    assert browser.post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]


def test_nothing_is_lost_through_the_api_either(outbox, upstream, user):
    api = api_endpoints()
    caller = attacker()
    token = caller.post(api["request"], {"number": NUMBER}, content_type="application/json")
    token = token.json()["request_id"]
    code = last_code(outbox)
    upstream.faults["check"] = ProviderUnavailable(LEAK)

    answer = caller.post(
        api["check"], {"request_id": token, "code": code}, content_type="application/json"
    )
    assert answer.status_code == 503
    assert answer.json()["status"] == "5"
    assert "s3cr3t" not in answer.content.decode()

    del upstream.faults["check"]
    answer = caller.post(
        api["check"], {"request_id": token, "code": code}, content_type="application/json"
    )
    assert answer.json()["status"] == "0"


@pytest.mark.parametrize(
    "failure",
    [ProviderUnavailable(LEAK), Throttled(LEAK), InvalidNumber(LEAK), VerificationError(LEAK)],
    ids=lambda exc: type(exc).__name__,
)
def test_a_failed_start_stores_nothing_and_keeps_the_earlier_verification(
    outbox, upstream, failure
):
    browser = attacker()
    start_login(browser, OTHER_NUMBER)
    earlier = pending(browser)
    started = VerificationLog.objects.filter(outcome=Outcome.STARTED).count()
    upstream.faults["start"] = failure

    response = start_login(browser, NUMBER)

    assert pending(browser) == earlier
    assert VerificationLog.objects.filter(outcome=Outcome.STARTED).count() == started
    assert_clear_and_quiet(shown(browser, response))
    assert [message.number for message in outbox] == [OTHER_NUMBER]


@pytest.mark.parametrize("action", ["resend", "call", "cancel"])
@pytest.mark.parametrize(
    "failure",
    [ProviderUnavailable(LEAK), Throttled(LEAK), ActionNotAllowed(LEAK), VerificationError(LEAK)],
    ids=lambda exc: type(exc).__name__,
)
def test_failures_on_resend_call_and_cancel_are_clear_pages(
    settings, outbox, upstream, time_machine, action, failure
):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    browser = attacker()
    start_login(browser)
    time_machine.shift(getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1)
    for method in ("start", "cancel", "trigger_next"):
        upstream.faults[method] = failure

    response = browser.post(f"/verify/{action}/")

    assert_clear_and_quiet(shown(browser, response))
    assert len(outbox) == 1


# Through the real SDK and the Vonage emulator ----------------------------------

BACKENDS = ["vonage_backend_settings", "vonage_legacy_backend_settings"]
NETWORK_FAULTS = [
    Fault.SERVER_ERROR,
    Fault.RATE_LIMITED,
    Fault.UNAUTHORIZED,
    Fault.PAYMENT_REQUIRED,
    Fault.FORBIDDEN,
    Fault.SERVICE_UNAVAILABLE,
    Fault.SLOW,
    Fault.DROP,
    Fault.REFUSE,
    Fault.NOT_JSON,
]
UPSTREAM_TEXTS = [
    # 503's detail is worded like the site's own "temporarily unavailable" message.
    *(detail for status, detail in FAULT_DETAILS.items() if status != 503),
    *(title for _status, _fragment, title in FAULT_STATUS.values() if title != "Forbidden"),
    *(text for text in LEGACY_TEXTS.values() if len(text) > 12),
    "api-errors",
    "502 Bad Gateway",
]


def assert_nothing_upstream_shown(text: str, emulator, *codes: str) -> None:
    for upstream_text in UPSTREAM_TEXTS:
        assert upstream_text not in text, upstream_text
    for secret in (emulator.api_key, emulator.api_secret, "Traceback", *codes):
        assert secret not in text


@pytest.fixture(params=BACKENDS, ids=["v2", "legacy"])
def vonage(request, vonage_emulator):
    request.getfixturevalue(request.param)
    return vonage_emulator


@pytest.mark.parametrize("fault", NETWORK_FAULTS, ids=lambda fault: fault.value)
def test_provider_failures_on_start_show_a_clear_page_and_store_nothing(vonage, fault):
    vonage.fail(fault, on=None if fault is Fault.REFUSE else "start")
    browser = attacker()

    response = start_login(browser)

    assert pending(browser) is None
    text = shown(browser, response)
    assert_clear_and_quiet(text)
    assert_nothing_upstream_shown(text, vonage)
    vonage.heal()
    assert vonage.messages == []


@pytest.mark.parametrize("fault", NETWORK_FAULTS, ids=lambda fault: fault.value)
def test_provider_failures_on_check_fail_closed_and_lose_nothing(vonage, user, logins, fault):
    browser = attacker()
    start_login(browser)
    code = vonage.last_code(NUMBER)
    before = pending(browser)
    vonage.fail(fault, on=None if fault is Fault.REFUSE else "check")

    response = browser.post("/verify/", {"code": code})

    assert logins == []
    text = shown(browser, response)
    assert_clear_and_quiet(text)
    assert_nothing_upstream_shown(text, vonage, code)
    if fault is not Fault.RATE_LIMITED:
        assert pending(browser) == before
    vonage.heal()
    assert browser.post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]


@pytest.mark.parametrize("fault", NETWORK_FAULTS, ids=lambda fault: fault.value)
def test_provider_failures_on_cancel_are_a_clear_page(vonage, fault):
    browser = attacker()
    start_login(browser)
    vonage.advance(31)  # past the 30 seconds in which Vonage refuses any cancel
    vonage.fail(fault, on=None if fault is Fault.REFUSE else "cancel")

    response = browser.post("/verify/cancel/")

    assert pending(browser) is None
    text = shown(browser, response)
    assert_clear_and_quiet(text)
    assert_nothing_upstream_shown(text, vonage)


LEGACY_START_STATUSES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "15", "20", "29", "99"]
LEGACY_CHECK_STATUSES = ["1", "2", "3", "4", "5", "6", "8", "9", "17", "99", "101"]


@pytest.mark.parametrize("status", LEGACY_START_STATUSES)
def test_every_legacy_status_on_start_is_a_clear_page(
    vonage_legacy_backend_settings, vonage_emulator, status
):
    vonage_emulator.fail(Fault.LEGACY_STATUS, on="start", status=status)
    browser = attacker()

    response = start_login(browser)

    assert pending(browser) is None
    text = shown(browser, response)
    assert_clear_and_quiet(text)
    assert_nothing_upstream_shown(text, vonage_emulator)


@pytest.mark.parametrize("status", LEGACY_CHECK_STATUSES)
def test_every_legacy_status_on_check_logs_nobody_in(
    vonage_legacy_backend_settings, vonage_emulator, user, logins, status
):
    browser = attacker()
    start_login(browser)
    code = vonage_emulator.last_code(NUMBER)
    vonage_emulator.fail(Fault.LEGACY_STATUS, on="check", status=status)

    response = browser.post("/verify/", {"code": code})

    assert logins == []
    text = shown(browser, response)
    assert_clear_and_quiet(text)
    assert_nothing_upstream_shown(text, vonage_emulator, code)
