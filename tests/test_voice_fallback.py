"""Vonage calls only when the person asks, unless VERIFY_VOICE_FALLBACK_AFTER says otherwise.

An SMS code nobody uses must not ring the phone on its own: each abandoned
login would cost an SMS and a call. Both Vonage APIs move on to the next
channel by themselves after a wait; these tests run the login through Django's
test client and the real SDK against the emulator, move the emulator's clock,
and read what the phone received.
"""

import subprocess
import sys

import pytest

from verification import get_backend
from verification.checks import check_verification_backend

from .conftest import NUMBER, start_login
from .test_settings import BASE_DIR, REFUSED, environment

pytestmark = pytest.mark.django_db

SETTINGS = {"vonage": "vonage_backend_settings", "vonage-legacy": "vonage_legacy_backend_settings"}


@pytest.fixture(params=list(SETTINGS))
def api(request):
    """Configure one Vonage API against the emulator (v1 workflow 1: SMS, call, call)."""
    request.getfixturevalue(SETTINGS[request.param])
    return request.param


def channels(emulator):
    return [message.channel for message in emulator.messages]


def test_an_unused_code_brings_no_call_with_the_default_settings(
    client, api, settings, vonage_emulator
):
    start_login(client)

    # The code is dead on the site after VERIFY_CODE_TTL; nothing rings by then,
    # nor until Vonage's longest wait is almost over.
    vonage_emulator.advance(settings.VERIFY_CODE_TTL)
    assert channels(vonage_emulator) == ["sms"]
    vonage_emulator.advance(899 - settings.VERIFY_CODE_TTL)
    assert channels(vonage_emulator) == ["sms"]


def test_call_me_instead_still_calls_with_the_default_settings(
    client, api, settings, vonage_emulator
):
    settings.VERIFY_RESEND_COOLDOWN = 0
    start_login(client)

    client.post("/verify/call/")

    assert channels(vonage_emulator) == ["sms", "voice"]
    code = vonage_emulator.last_code(NUMBER)
    assert client.post("/verify/", {"code": code})["Location"] == "/"


def test_the_setting_turns_the_automatic_call_on_after_the_chosen_wait(
    client, api, settings, vonage_emulator
):
    settings.VERIFY_VOICE_FALLBACK_AFTER = 120
    start_login(client)

    vonage_emulator.advance(119)
    assert channels(vonage_emulator) == ["sms"]
    vonage_emulator.advance(2)
    assert channels(vonage_emulator) == ["sms", "voice"]

    # The call reads a code that logs the person in.
    code = vonage_emulator.last_code(NUMBER)
    assert client.post("/verify/", {"code": code})["Location"] == "/"


def test_the_chosen_wait_is_what_vonage_is_asked_for(api, settings, vonage_emulator):
    settings.VERIFY_VOICE_FALLBACK_AFTER = 120
    settings.VERIFY_CODE_TTL = 300

    get_backend().start(NUMBER)

    params = vonage_emulator.calls("start")[0].params
    if api == "vonage":
        assert params["channel_timeout"] == 120
    else:
        # v1 takes a pin_expiry only as a multiple of next_event_wait: the
        # longest within the code's life, so Vonage does not change it.
        assert (params["next_event_wait"], params["pin_expiry"]) == ("120", "240")


def test_a_workflow_without_a_call_keeps_the_codes_lifetime(api, settings, vonage_emulator):
    settings.VERIFY_WORKFLOW = ["sms"]
    settings.VERIFY_LEGACY_WORKFLOW_ID = 6
    settings.VERIFY_CODE_TTL = 120

    get_backend().start(NUMBER)

    params = vonage_emulator.calls("start")[0].params
    if api == "vonage":
        assert params["channel_timeout"] == 120
    else:
        assert params["pin_expiry"] == "120"
        assert "next_event_wait" not in params


# manage.py check ----------------------------------------------------------------


def check_ids():
    return {message.id: message for message in check_verification_backend()}


@pytest.fixture
def configured(api, settings):
    settings.VERIFY_LOCALE = ""
    return settings


@pytest.mark.parametrize("seconds", [-1, 14, 901])
def test_a_wait_no_vonage_api_takes_stops_the_check(configured, seconds):
    configured.VERIFY_VOICE_FALLBACK_AFTER = seconds

    error = check_ids()["verification.E020"]

    assert f"VERIFY_VOICE_FALLBACK_AFTER={seconds}" in error.msg
    assert "Call me instead" in error.hint


def test_v1_waits_a_minute_at_least(configured, api):
    configured.VERIFY_VOICE_FALLBACK_AFTER = 30

    found = check_ids()

    if api == "vonage":
        assert found == {}
    else:
        assert "60 to 900 seconds" in found["verification.E020"].msg


def test_a_wait_longer_than_the_code_warns(configured):
    configured.VERIFY_CODE_TTL = 300
    configured.VERIFY_VOICE_FALLBACK_AFTER = 300

    warning = check_ids()["verification.W021"]

    assert "dead on the site before Vonage calls" in warning.msg


def test_a_wait_with_nothing_to_fall_back_to_warns(configured):
    configured.VERIFY_WORKFLOW = ["sms"]
    configured.VERIFY_LEGACY_WORKFLOW_ID = 6
    configured.VERIFY_VOICE_FALLBACK_AFTER = 120

    assert "has no effect" in check_ids()["verification.W020"].msg


def test_off_and_a_good_wait_pass(configured):
    assert check_ids() == {}
    configured.VERIFY_VOICE_FALLBACK_AFTER = 120
    assert check_ids() == {}


# The environment -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, "0"), ("", "0"), ("0", "0"), ("90", "90")])
def test_the_setting_is_read_from_the_environment(tmp_path, value, expected):
    result = read_setting(tmp_path, value)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_a_wait_that_is_not_a_number_refuses_to_start(tmp_path):
    result = read_setting(tmp_path, "2m")

    assert REFUSED in result.stderr
    assert "VERIFY_VOICE_FALLBACK_AFTER must be a number of seconds" in result.stderr


def read_setting(tmp_path, value):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from passwordless import settings; print(settings.VERIFY_VOICE_FALLBACK_AFTER)",
        ],
        cwd=BASE_DIR,
        env=environment(tmp_path, VERIFY_VOICE_FALLBACK_AFTER=value),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
