"""The phone login through Django's test client, with each Vonage backend and the emulator.

Every page is checked for what must never show: an HTTP 500, Vonage's own
error text, a credential, a code, the upstream request id.
"""

import logging

import pytest

from flows.views import MESSAGES

from .conftest import NUMBER, OTHER_NUMBER, messages_of, pending, start_login
from .emulator import Fault

pytestmark = pytest.mark.django_db

MASKED = {"number": "+1 415 ••• ••00"}
# What the person reads: the views keep every text in MESSAGES.
SENT = f'we sent a code to <strong class="number">{MASKED["number"]}</strong>'
UNAVAILABLE = MESSAGES["unavailable"]
CONCURRENT = MESSAGES["concurrent"]
INVALID_NUMBER = MESSAGES["invalid_number"]
# Words of Vonage's answers (specifications and emulator) that must stay out of pages.
UPSTREAM_TEXTS = [
    "Internal error",
    "Internal Error",
    "Unauthorized",
    "credentials",
    "Low balance",
    "Rate Limit Hit",
    "Throttled",
    "Concurrent verifications",
    "does not match the expected value",
    "Workflow terminated",
    "Request terminated",
    "blacklisted",
    "could not be routed",
    "Partner quota",
    "Bad Gateway",
    "Gateway Timeout",
    "api-errors",
    "Traceback",
]


@pytest.fixture(params=["vonage", "vonage-legacy"])
def flow(request, settings):
    """Configure one Vonage backend against the emulator, with room for many attempts."""
    fixture = {
        "vonage": "vonage_backend_settings",
        "vonage-legacy": "vonage_legacy_backend_settings",
    }
    request.getfixturevalue(fixture[request.param])
    for name in (
        "VERIFY_RATE_START_PER_IP",
        "VERIFY_RATE_START_PER_NUMBER",
        "VERIFY_RATE_CHECK_PER_SESSION",
        "VERIFY_RATE_CHECK_PER_IP",
        "VERIFY_RATE_WRONG_CODES_PER_NUMBER",
        "VERIFY_PREFIX_RATE",
    ):
        setattr(settings, name, "1000/h")
    return request.param


@pytest.fixture
def emulator(flow, vonage_emulator):
    return vonage_emulator


def assert_clean(response, emulator):
    """Assert that a page shows nothing of Vonage's: no 500, text, credential, code or id."""
    assert response.status_code < 500
    page = response.content.decode()
    for text in UPSTREAM_TEXTS:
        assert text not in page, text
    assert emulator.api_secret not in page
    assert emulator.api_key not in page
    for message in emulator.messages:
        assert message.code not in page
    for request_id in emulator.rules.requests:
        assert request_id not in page


def follow(client, response, emulator):
    """Follow a redirect (or not) and return the page, checked clean."""
    assert_clean(response, emulator)
    if response.status_code == 302:
        response = client.get(response["Location"])
        assert_clean(response, emulator)
    return response


def verify(client, code):
    return client.post("/verify/", {"code": code})


def test_login_verify_and_logout(client, emulator):
    response = start_login(client)
    assert (response.status_code, response["Location"]) == (302, "/verify/")
    page = follow(client, response, emulator)
    assert SENT in page.content.decode()
    assert messages_of(page) == []  # the page says it once, not twice
    assert "Call me instead" in page.content.decode()

    response = verify(client, emulator.last_code(NUMBER))

    assert (response.status_code, response["Location"]) == (302, "/")
    home = follow(client, response, emulator)
    assert MESSAGES["logged_in"] in messages_of(home)
    assert pending(client) is None
    assert emulator.state_of(emulator.last_message(NUMBER).request_id) == "SUCCESS"

    response = client.post("/logout/")
    assert MESSAGES["logged_out"] in messages_of(follow(client, response, emulator))
    assert "_auth_user_id" not in client.session


def test_login_with_a_jwt(client, vonage_jwt_backend_settings, vonage_emulator):
    start_login(client)
    response = verify(client, vonage_emulator.last_code(NUMBER))

    assert response["Location"] == "/"
    assert {call.auth for call in vonage_emulator.calls()} == {"jwt"}


def test_a_wrong_code_says_how_many_attempts_are_left(client, emulator):
    start_login(client)
    code = emulator.last_code(NUMBER)

    response = verify(client, "0" * len(code) if code != "0" * len(code) else "1" * len(code))

    assert response["Location"] == "/verify/"
    page = follow(client, response, emulator)
    assert MESSAGES["incorrect_code"] % {"attempts": "2 attempts left."} in messages_of(page)
    assert verify(client, code)["Location"] == "/"


def test_three_wrong_codes_send_the_person_back_to_the_start(client, emulator):
    start_login(client)
    wrong = "".join("1" if digit != "1" else "2" for digit in emulator.last_code(NUMBER))
    verify(client, wrong)
    verify(client, wrong)

    response = verify(client, wrong)

    assert response["Location"] == "/login/"
    page = follow(client, response, emulator)
    assert MESSAGES["too_many_attempts"] in messages_of(page)
    assert pending(client) is None


def test_a_code_expired_upstream_sends_the_person_back_to_the_start(client, emulator):
    start_login(client)
    emulator.advance(3600)

    response = verify(client, emulator.last_code(NUMBER))

    assert response["Location"] == "/login/"
    page = follow(client, response, emulator)
    assert MESSAGES["expired"] in messages_of(page)
    assert pending(client) is None


def test_a_second_login_from_the_same_session_keeps_the_code_on_its_way(client, emulator):
    start_login(client)
    code = emulator.last_code(NUMBER)

    response = start_login(client)

    page = follow(client, response, emulator)
    assert MESSAGES["already_sent"] % MASKED in messages_of(page)
    assert len(emulator.messages) == 1
    assert verify(client, code)["Location"] == "/"


def test_a_login_from_another_session_while_a_code_is_live_adopts_it(
    client, django_user_model, emulator
):
    """A double click or a second tab: one code, and the second browser logs in with it."""
    from django.test import Client

    start_login(client)
    other = Client()

    response = start_login(other)

    assert response["Location"] == "/verify/"
    assert pending(other)["request_id"] == pending(client)["request_id"]
    assert len(emulator.calls("start")) == 1
    assert verify(other, emulator.last_code(NUMBER))["Location"] == "/"


def test_a_live_request_the_site_does_not_know_must_wait(client, django_user_model, emulator):
    """Vonage's one-request-per-number rule still answers for a request the site has no
    trace of (neither the cache's record nor the log's row)."""
    from django.core.cache import cache
    from django.test import Client

    from verificationlog.models import VerificationLog

    start_login(client)
    cache.delete(f"verification:live:real:{NUMBER}")
    VerificationLog.objects.all().delete()
    other = Client()

    response = start_login(other)

    assert response.status_code == 200
    assert_clean(response, emulator)
    assert CONCURRENT in messages_of(response)
    assert pending(other) is None
    # The first session's code still works.
    assert verify(client, emulator.last_code(NUMBER))["Location"] == "/"


@pytest.mark.parametrize("reason", ["invalid", "unroutable", "blocked", "unsupported_network"])
def test_a_number_vonage_cannot_reach_is_refused_on_the_login_form(client, emulator, reason):
    emulator.refuse_number(NUMBER, reason)

    response = start_login(client)

    assert response.status_code == 200
    assert_clean(response, emulator)
    assert response.context["form"].errors["number"] == [INVALID_NUMBER]
    assert pending(client) is None


def test_throttled_by_vonage(client, emulator):
    emulator.fail(Fault.RATE_LIMITED)

    response = start_login(client)

    assert response.status_code == 200
    assert_clean(response, emulator)
    assert MESSAGES["throttled"] in messages_of(response)
    assert pending(client) is None


@pytest.mark.parametrize(
    "fault",
    [
        Fault.SERVER_ERROR,
        Fault.UNAUTHORIZED,
        Fault.PAYMENT_REQUIRED,
        Fault.SLOW,
        Fault.DROP,
        Fault.REFUSE,
        Fault.NOT_JSON,
    ],
)
def test_vonage_failing_at_the_start_is_temporarily_unavailable(client, emulator, fault):
    emulator.fail(fault)

    response = start_login(client)

    assert response.status_code == 200
    assert_clean(response, emulator)
    assert UNAVAILABLE in messages_of(response)
    assert pending(client) is None
    emulator.heal()
    assert start_login(client)["Location"] == "/verify/"


@pytest.mark.parametrize(
    "fault", [Fault.SERVER_ERROR, Fault.SLOW, Fault.DROP, Fault.REFUSE, Fault.NOT_JSON]
)
def test_vonage_failing_at_the_check_keeps_the_code_for_another_try(client, emulator, fault):
    start_login(client)
    code = emulator.last_code(NUMBER)
    emulator.fail(fault, on=None if fault is Fault.REFUSE else "check")

    response = verify(client, code)

    assert response["Location"] == "/verify/"
    assert UNAVAILABLE in messages_of(follow(client, response, emulator))
    assert pending(client)["number"] == NUMBER
    emulator.heal()
    assert verify(client, code)["Location"] == "/"


def test_bad_credentials_tell_the_operator_not_the_person(client, emulator, settings, caplog):
    settings.VONAGE_API_SECRET = "not-the-secret-4821"

    response = start_login(client)

    assert_clean(response, emulator)
    assert UNAVAILABLE in messages_of(response)
    assert "not-the-secret-4821" not in response.content.decode()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "credentials" in errors[0].getMessage()
    assert "not-the-secret-4821" not in caplog.text


def test_resend_within_the_cooldown_asks_to_wait_and_sends_nothing(client, emulator):
    start_login(client)

    response = client.post("/verify/resend/")

    assert response["Location"] == "/verify/"
    page = follow(client, response, emulator)
    wait = MESSAGES["resend_wait"].partition("%(")[0]
    assert any(text.startswith(wait) for text in messages_of(page))
    assert [call.operation for call in emulator.calls()] == ["start"]


def test_resend_refused_upstream_in_the_first_30_seconds_keeps_the_code(client, emulator, settings):
    settings.VERIFY_RESEND_COOLDOWN = 0
    start_login(client)
    code = emulator.last_code(NUMBER)

    response = client.post("/verify/resend/")

    page = follow(client, response, emulator)
    assert MESSAGES["resend_too_soon"] in messages_of(page)
    assert verify(client, code)["Location"] == "/"


def test_resend_after_30_seconds_sends_a_new_code(client, emulator, settings):
    settings.VERIFY_RESEND_COOLDOWN = 0
    start_login(client)
    first = emulator.last_message(NUMBER)
    emulator.advance(31)

    response = client.post("/verify/resend/")

    page = follow(client, response, emulator)
    assert MESSAGES["resent"] % MASKED in messages_of(page)
    second = emulator.last_message(NUMBER)
    assert second.request_id != first.request_id
    assert emulator.state_of(first.request_id) == "CANCELLED"
    assert verify(client, second.code)["Location"] == "/"


def test_call_me_reads_a_code_that_logs_in(client, emulator, settings):
    settings.VERIFY_RESEND_COOLDOWN = 0
    settings.VERIFY_LEGACY_WORKFLOW_ID = 5  # SMS, then one call: as v2's sms,voice
    start_login(client)

    response = client.post("/verify/call/")

    page = follow(client, response, emulator)
    assert MESSAGES["call"] % MASKED in messages_of(page)
    call = emulator.last_message(NUMBER)
    assert call.channel == "voice"

    again = follow(client, client.post("/verify/call/"), emulator)
    assert MESSAGES["call_not_possible"] in messages_of(again)
    assert verify(client, call.code)["Location"] == "/"


def test_no_call_me_button_without_a_next_channel(client, emulator, settings):
    settings.VERIFY_WORKFLOW = ["sms"]
    settings.VERIFY_LEGACY_WORKFLOW_ID = 6
    start_login(client)

    page = client.get("/verify/")

    assert "Call me instead" not in page.content.decode()


def test_cancel_in_the_first_30_seconds_clears_the_session_and_says_so(client, emulator):
    start_login(client)
    request_id = emulator.last_message(NUMBER).request_id

    response = client.post("/verify/cancel/")

    assert response["Location"] == "/login/"
    page = follow(client, response, emulator)
    assert MESSAGES["cancelled_here"] in messages_of(page)
    assert pending(client) is None
    assert emulator.state_of(request_id) == "IN PROGRESS"
    # Vonage kept the request: starting again gets it back (the site's log
    # says it started it for this login) rather than a second SMS or a wait.
    again = start_login(client)
    assert again["Location"] == "/verify/"
    assert pending(client)["request_id"] == request_id
    assert len(emulator.messages) == 1


def test_cancel_after_30_seconds_stops_the_code(client, emulator):
    start_login(client)
    request_id = emulator.last_message(NUMBER).request_id
    emulator.advance(31)

    response = client.post("/verify/cancel/")

    page = follow(client, response, emulator)
    assert MESSAGES["cancelled"] in messages_of(page)
    assert pending(client) is None
    assert emulator.state_of(request_id) == "CANCELLED"
    assert start_login(client)["Location"] == "/verify/"


def test_resend_and_call_failing_upstream_keep_the_pending_code(client, emulator, settings):
    settings.VERIFY_RESEND_COOLDOWN = 0
    start_login(client)
    code = emulator.last_code(NUMBER)
    emulator.fail(Fault.SERVER_ERROR)

    for url in ("/verify/resend/", "/verify/call/"):
        response = client.post(url)
        assert response["Location"] == "/verify/"
        assert UNAVAILABLE in messages_of(follow(client, response, emulator))

    emulator.heal()
    assert verify(client, code)["Location"] == "/"


def test_cancel_while_vonage_is_down_still_clears_the_session(client, emulator):
    start_login(client)
    emulator.advance(31)
    emulator.fail(Fault.SERVER_ERROR)

    response = client.post("/verify/cancel/")

    assert response.status_code == 302
    assert pending(client) is None


def test_another_number_is_not_held_up_by_a_live_request(client, emulator):
    start_login(client)
    response = start_login(client, OTHER_NUMBER)

    assert response["Location"] == "/verify/"
    assert pending(client)["number"] == OTHER_NUMBER


def test_coming_back_after_the_code_expired_gets_a_new_code(client, emulator, time_machine):
    """Vonage keeps the unused request live past the site's code lifetime (no call
    unasked): the next start cancels it instead of meeting Vonage's refusal."""
    from django.conf import settings
    from django.test import Client

    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    start_login(client)
    first = pending(client)["request_id"]
    later = settings.VERIFY_CODE_TTL + 1
    time_machine.shift(later)
    emulator.advance(later)
    returning = Client()

    response = start_login(returning)

    assert response["Location"] == "/verify/"
    assert emulator.state_of(first) == "CANCELLED"
    assert pending(returning)["request_id"] != first
    assert len(emulator.calls("start")) == 2
    assert verify(returning, emulator.last_code(NUMBER))["Location"] == "/"
