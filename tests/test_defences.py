"""Defences against SMS pumping and abuse: each refusal sends nothing and is recorded."""

import logging
import subprocess
import sys
import time

import pytest
import time_machine

from flows import defences
from verificationlog.models import Outcome, VerificationLog

from .conftest import NUMBER, last_code, messages_of, pending, start_login

pytestmark = pytest.mark.django_db

PREMIUM_RATE = "+19002345678"
TOLL_FREE = "+18002345678"
UK_VOIP = "+445612345678"
FRENCH_MOBILE = "+33612345678"


def refusals(detail):
    return VerificationLog.objects.filter(outcome=Outcome.REFUSED, detail=detail).count()


def test_a_number_outside_the_allowed_countries_is_refused_on_the_form(client, outbox, settings):
    settings.VERIFY_ALLOWED_COUNTRIES = ["US", "GB"]
    response = start_login(client, FRENCH_MOBILE)
    assert response.status_code == 200
    assert "We do not send codes to phone numbers in this country" in response.content.decode()
    assert outbox == []
    assert pending(client) is None
    assert refusals("country") == 1


def test_allowed_countries_still_get_codes(client, outbox, settings):
    settings.VERIFY_ALLOWED_COUNTRIES = ["US"]
    assert start_login(client)["Location"] == "/verify/"
    assert outbox[-1].number == NUMBER


@pytest.mark.parametrize("number", [PREMIUM_RATE, TOLL_FREE, "+447640123456", "+33884012345"])
def test_costly_number_types_are_refused_by_default(client, outbox, number):
    response = start_login(client, number)
    assert response.status_code == 200
    assert "premium-rate, toll-free, shared-cost or similar numbers" in response.content.decode()
    assert outbox == []
    assert refusals("type") == 1


def test_voip_numbers_are_refused_only_when_configured(client, outbox, settings):
    assert start_login(client, UK_VOIP)["Location"] == "/verify/"
    settings.VERIFY_BLOCK_VOIP = True
    outbox.clear()
    response = start_login(client, "+33912345678")
    assert response.status_code == 200
    assert outbox == []


def test_starts_per_number_range_are_limited(client, outbox, settings):
    settings.VERIFY_PREFIX_RATE = "4/h"
    statuses = []
    for index in range(8):
        response = client.post(
            "/login/", {"number": f"+1415555{index:04d}"}, REMOTE_ADDR=f"10.1.0.{index}"
        )
        statuses.append(response.status_code)
    assert statuses == [302] * 4 + [429] * 4
    assert len(outbox) == 4
    assert (
        VerificationLog.objects.filter(
            outcome=Outcome.RATE_LIMITED, detail="verify.start.prefix"
        ).count()
        == 4
    )


def test_site_wide_cap_pauses_new_codes_and_alerts_the_operator(client, outbox, settings, caplog):
    settings.VERIFY_MAX_SENDS_PER_HOUR = 2
    first, second = "+14155550101", "+14155550102"
    start_login(client, first)
    other = client.__class__()
    start_login(other, second)
    third = client.__class__()
    with caplog.at_level(logging.ERROR, logger="flows.defences"):
        response = start_login(third, "+14155550103")
    assert response.status_code == 200
    assert "temporarily unavailable" in " ".join(messages_of(response))
    assert [m.number for m in outbox] == [first, second]
    assert any("sending paused" in record.getMessage() for record in caplog.records)
    assert refusals("site cap") == 1
    # A code already sent still logs its person in.
    response = other.post("/verify/", {"code": last_code(outbox, second)})
    assert response["Location"] == "/"


def test_daily_cap_applies_too(client, outbox, settings):
    settings.VERIFY_MAX_SENDS_PER_DAY = 1
    start_login(client)
    response = start_login(client.__class__(), "+14155550102")
    assert "temporarily unavailable" in " ".join(messages_of(response))
    assert len(outbox) == 1


def test_low_conversion_is_logged_once_per_window(client, outbox, settings, caplog):
    settings.VERIFY_CONVERSION_MIN_VOLUME = 3
    settings.VERIFY_MIN_CONVERSION = 0.5
    settings.VERIFY_PREFIX_RATE = "100/h"
    with caplog.at_level(logging.WARNING, logger="flows.defences"):
        for index in range(5):
            client.__class__().post(
                "/login/", {"number": f"+1415555{index:04d}"}, REMOTE_ADDR=f"10.2.0.{index}"
            )
            # The watch looks at most once a minute, in each process and in all.
            from django.core.cache import cache

            cache.delete("defences:conversion-looked")
            defences._Watch.next_look = 0.0
    warnings = [r for r in caplog.records if "conversion low" in r.getMessage()]
    assert len(warnings) == 1
    assert "of 3 started" in warnings[0].getMessage()


def test_healthy_conversion_is_not_flagged(client, outbox, settings, caplog):
    settings.VERIFY_CONVERSION_MIN_VOLUME = 1
    with caplog.at_level(logging.WARNING, logger="flows.defences"):
        start_login(client)
        client.post("/verify/", {"code": last_code(outbox)})
    assert not [r for r in caplog.records if "conversion low" in r.getMessage()]


def test_resend_waits_for_the_cooldown_and_the_page_says_how_long(client, outbox):
    start_login(client)
    page = client.get("/verify/").content.decode()
    assert "You can ask for a new code or a call in <span data-seconds>30</span> seconds" in page
    assert 'data-resend-wait="30"' in page
    assert "js/resend-countdown.js" in page
    response = client.post("/verify/resend/", follow=True)
    assert "You can ask for a new code or a call in 30 seconds." in " ".join(messages_of(response))
    assert len(outbox) == 1
    with time_machine.travel(time.time() + 31):
        assert 'data-resend-wait="0"' in client.get("/verify/").content.decode()
        client.post("/verify/resend/")
        assert len(outbox) == 2
        response = client.post("/verify/call/", follow=True)
        assert "You can ask for a new code or a call in" in " ".join(messages_of(response))
        assert len(outbox) == 2


def test_the_countdown_script_is_served(client):
    from django.contrib.staticfiles import finders

    path = finders.find("js/resend-countdown.js")
    with open(path) as script:
        assert "data-resend-wait" in script.read()


def test_a_test_number_logs_in_with_its_fixed_code_and_sends_nothing(
    client, outbox, settings, caplog
):
    settings.VERIFY_TEST_NUMBERS = {"+15005550006": "246810"}
    with caplog.at_level(logging.WARNING):
        response = start_login(client, "+1 500 555 0006")
    assert response["Location"] == "/verify/"
    assert outbox == []
    assert any("test number used" in r.getMessage() for r in caplog.records)
    assert "+15005550006" not in caplog.text
    response = client.post("/verify/", {"code": "246810"})
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"]


def test_a_test_number_refuses_other_codes_like_a_real_one(client, outbox, settings):
    settings.VERIFY_TEST_NUMBERS = {"+15005550006": "246810"}
    start_login(client, "+15005550006")
    for _ in range(2):
        assert client.post("/verify/", {"code": "111111"})["Location"] == "/verify/"
    assert client.post("/verify/", {"code": "111111"})["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_other_numbers_still_go_to_the_real_backend_with_test_numbers_set(client, outbox, settings):
    settings.VERIFY_TEST_NUMBERS = {"+15005550006": "246810"}
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    assert client.session["_auth_user_id"]


def run_settings(env):
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "passwordless.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "test-defences-" + "k7Qz" * 10,
    "ALLOWED_HOSTS": "example.com",
    "CACHE_URL": "redis://127.0.0.1:6379/0",
    "VERIFY_BACKEND": "vonage",
    "VONAGE_API_KEY": "key",
    "VONAGE_API_SECRET": "secret",
}


def test_test_numbers_are_refused_in_production_unless_allowed():
    refused = run_settings({**PRODUCTION, "VERIFY_TEST_NUMBERS": "+15005550006=246810"})
    assert refused.returncode != 0
    assert "VERIFY_TEST_NUMBERS is set with DEBUG off" in refused.stderr
    allowed = run_settings(
        {
            **PRODUCTION,
            "VERIFY_TEST_NUMBERS": "+15005550006=246810",
            "VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION": "true",
        }
    )
    assert allowed.returncode == 0, allowed.stderr


def test_a_number_locked_for_wrong_codes_gets_no_new_code(client, outbox, settings):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "2/h"
    start_login(client)
    right = last_code(outbox)
    wrong = "000000" if right != "000000" else "111111"
    client.post("/verify/", {"code": wrong})
    client.post("/verify/", {"code": wrong})
    sent = len(outbox)
    response = start_login(client.__class__())
    assert response.status_code == 429
    assert "Too many wrong codes for this phone number" in response.content.decode()
    assert len(outbox) == sent
