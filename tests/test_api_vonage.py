"""The JSON API through the real Vonage backends, against the HTTPS Vonage emulator.

Verify v2 (`vonage`) and Verify v1 (`vonage-legacy`) each run the API's success
and main error paths: the real SDK makes real HTTPS calls to the emulator
(tests/emulator/fixtures.py). Every answer is also checked against the OpenAPI
document, and none carries the upstream request id or a credential.
"""

from __future__ import annotations

import pytest

from .conftest import NUMBER, OTHER_NUMBER
from .emulator import Fault
from .test_api import TOKEN_PATTERN, api, refused

pytestmark = pytest.mark.django_db

BACKENDS = {
    "vonage": "vonage_backend_settings",
    "vonage-legacy": "vonage_legacy_backend_settings",
}


@pytest.fixture(params=list(BACKENDS))
def backend(request, vonage_emulator):
    """Point the site at the emulator through one Vonage backend; return its alias."""
    settings = request.getfixturevalue(BACKENDS[request.param])
    # The API's own wait between sends is tested with locmem; here the
    # emulator's rules on next events are the point.
    settings.VERIFY_RESEND_COOLDOWN = 0
    return request.param


@pytest.fixture
def answers(vonage_emulator):
    """Every response the test received, to check none leaks a secret at the end."""
    received = []
    yield received
    secrets = {vonage_emulator.api_key, vonage_emulator.api_secret}
    secrets |= {message.request_id for message in vonage_emulator.messages}
    for response in received:
        for secret in secrets:
            assert secret not in response.content.decode(), "an upstream secret or id leaked"


def call(client, answers, endpoint, data):
    response = api(client, endpoint, data)
    answers.append(response)
    return response


def start(client, answers, number=NUMBER) -> str:
    response = call(client, answers, "request", {"number": number.removeprefix("+")})
    assert response.status_code == 200, response.content
    token = response.json()["request_id"]
    assert TOKEN_PATTERN.match(token)
    return token


def wrong(code: str) -> str:
    return "0" * len(code) if code != "0" * len(code) else "1" * len(code)


def test_request_then_the_right_code(client, answers, backend, vonage_emulator):
    token = start(client, answers)
    code = vonage_emulator.last_code(NUMBER)

    response = call(client, answers, "check", {"request_id": token, "code": code})

    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == token
    assert body["status"] == "0"
    request_id = vonage_emulator.last_message(NUMBER).request_id
    assert vonage_emulator.state_of(request_id) == "SUCCESS"
    if backend == "vonage-legacy":
        # v1 reports the event and what it cost.
        assert body["event_id"]
        assert float(body["price"]) >= 0
        assert body["currency"]
    else:
        assert (body["event_id"], body["price"], body["currency"]) == (None, None, None)
    refused(call(client, answers, "check", {"request_id": token, "code": code}), 400, "6")
    assert len(vonage_emulator.calls("check")) == 1


def test_wrong_codes_end_the_request(client, answers, backend, vonage_emulator):
    token = start(client, answers)
    code = wrong(vonage_emulator.last_code(NUMBER))

    statuses = [
        call(client, answers, "check", {"request_id": token, "code": code}).json()["status"]
        for _ in range(4)
    ]

    assert statuses == ["16", "16", "17", "6"]
    assert vonage_emulator.state_of(vonage_emulator.last_message(NUMBER).request_id) == "FAILED"
    assert len(vonage_emulator.calls("check")) == 3


def test_a_second_request_for_a_live_number_gets_a_token_for_it(
    client, answers, backend, vonage_emulator
):
    first = start(client, answers)
    second = start(client, answers)
    code = vonage_emulator.last_code(NUMBER)

    assert second != first
    assert len(vonage_emulator.calls("start")) == 1
    response = call(client, answers, "check", {"request_id": second, "code": code})
    assert response.json()["status"] == "0"


def test_a_request_vonage_has_ended_is_6(client, answers, backend, vonage_emulator):
    token = start(client, answers)
    code = vonage_emulator.last_code(NUMBER)
    # Past every channel's timeout on Vonage's clock (ours has not moved, so
    # the token is still good and the check reaches Vonage).
    vonage_emulator.advance(3600)

    refused(call(client, answers, "check", {"request_id": token, "code": code}), 400, "6")


def test_cancel_follows_the_30_second_rule(client, answers, backend, vonage_emulator):
    token = start(client, answers)

    refused(call(client, answers, "cancel", {"request_id": token}), 400, "19")
    vonage_emulator.advance(30)
    response = call(client, answers, "cancel", {"request_id": token})

    assert response.json() == {"status": "0", "command": "cancel"}
    request_id = vonage_emulator.last_message(NUMBER).request_id
    assert vonage_emulator.state_of(request_id) == "CANCELLED"
    refused(call(client, answers, "cancel", {"request_id": token}), 400, "6")


def test_next_calls_until_no_event_is_left(client, answers, backend, vonage_emulator, settings):
    # Each call is a code sent: allow more than the three per number of the default.
    settings.VERIFY_RATE_START_PER_NUMBER = "10/15m"
    token = start(client, answers)
    # v2 here: sms, voice; v1 workflow 1: sms, voice, voice.
    calls = 1 if backend == "vonage" else 2

    for _ in range(calls):
        response = call(client, answers, "next", {"request_id": token})
        assert response.json() == {"status": "0", "command": "trigger_next_event"}
        assert vonage_emulator.last_message(NUMBER).channel == "voice"
    refused(call(client, answers, "next", {"request_id": token}), 400, "19")

    code = vonage_emulator.last_code(NUMBER)
    assert call(client, answers, "check", {"request_id": token, "code": code}).status_code == 200


@pytest.mark.parametrize("reason", ["invalid", "unroutable", "blocked", "unsupported_network"])
def test_a_number_vonage_refuses_is_400(client, answers, backend, vonage_emulator, reason):
    vonage_emulator.refuse_number(NUMBER, reason)

    body = refused(call(client, answers, "request", {"number": NUMBER}), 400, "3")

    assert body["error_text"] == "Invalid value for param: number"


@pytest.mark.parametrize(
    ("fault", "http_status", "status"),
    [
        (Fault.SERVER_ERROR, 503, "5"),
        (Fault.SERVICE_UNAVAILABLE, 503, "5"),
        (Fault.UNAUTHORIZED, 503, "5"),
        (Fault.SLOW, 503, "5"),
        (Fault.DROP, 503, "5"),
        (Fault.NOT_JSON, 503, "5"),
        (Fault.RATE_LIMITED, 429, "1"),
    ],
)
def test_upstream_faults_on_request(
    client, answers, backend, vonage_emulator, fault, http_status, status
):
    vonage_emulator.fail(fault, on="start")

    response = call(client, answers, "request", {"number": NUMBER})

    refused(response, http_status, status)
    if http_status == 429:
        assert response.has_header("Retry-After")


def test_a_refused_connection_is_503(client, answers, backend, vonage_emulator):
    vonage_emulator.fail(Fault.REFUSE)

    refused(call(client, answers, "request", {"number": NUMBER}), 503, "5")


def test_no_credit_left_is_503_and_the_client_is_not_told_why(
    client, answers, backend, vonage_emulator
):
    vonage_emulator.low_balance = True

    body = refused(call(client, answers, "request", {"number": NUMBER}), 503, "5")

    assert body["error_text"] == (
        "The verification service is temporarily unavailable: try again later"
    )


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.SLOW, Fault.NOT_JSON])
def test_an_upstream_fault_on_check_keeps_the_token(
    client, answers, backend, vonage_emulator, fault
):
    token = start(client, answers)
    code = vonage_emulator.last_code(NUMBER)
    vonage_emulator.fail(fault, on="check", times=1)

    refused(call(client, answers, "check", {"request_id": token, "code": code}), 503, "5")
    vonage_emulator.heal()
    response = call(client, answers, "check", {"request_id": token, "code": code})

    assert response.status_code == 200


def test_a_forged_token_never_reaches_vonage(client, answers, backend, vonage_emulator):
    token = start(client, answers)
    forged = ("A" if token[0] != "A" else "B") + token[1:]

    for endpoint in ("check", "cancel", "next"):
        refused(call(client, answers, endpoint, {"request_id": forged, "code": "123456"}), 400, "6")

    assert [received.operation for received in vonage_emulator.calls()] == ["start"]


def test_with_signup_off_an_unknown_number_never_reaches_vonage(
    client, answers, backend, vonage_emulator, settings
):
    settings.PASSWORDLESS_SIGNUP = False

    token = start(client, answers, OTHER_NUMBER)
    refused(call(client, answers, "check", {"request_id": token, "code": "123456"}), 400, "16")

    assert vonage_emulator.calls() == []
