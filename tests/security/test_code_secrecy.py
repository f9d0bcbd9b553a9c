"""The code itself: long enough, short-lived, and never written down anywhere readable.

An attacker who reads the logs (a log shipper, a support screen) or a
database dump (a backup, a read replica) must find no code in it, and no full
phone number in the logs. A code must be hard to guess (six digits by default)
and useless after its lifetime (at most ten minutes).
"""

from __future__ import annotations

import logging
import time

import phonenumbers
import pytest

from ..conftest import (
    NUMBER,
    OTHER_NUMBER,
    holds_code,
    last_code,
    pending,
    start_login,
    stored_text,
)
from ..factories import UserFactory
from .conftest import api_endpoints, attacker, logged_in_sessions, settings_values, wrong_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
NEW_NUMBER = "+14155550123"


def number_forms(number: str) -> list[str]:
    """Return the ways a full number can be written in a log line."""
    parsed = phonenumbers.parse(number, None)
    formats = phonenumbers.PhoneNumberFormat
    return [
        number,
        number.removeprefix("+"),
        str(parsed.national_number),
        phonenumbers.format_number(parsed, formats.NATIONAL),
        phonenumbers.format_number(parsed, formats.INTERNATIONAL),
    ]


def every_flow(client_factory, outbox, time_machine, settings) -> None:
    """Run every way a code is sent and checked, right and wrong, through pages and API."""
    cooldown = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1
    UserFactory(username="phone", phone_number_for_2fa=NUMBER)
    UserFactory(username="alice", phone_number_for_2fa=OTHER_NUMBER, is_2fa_enabled=True)

    # Phone login: a wrong code, a resend, a call, the right code.
    browser = client_factory()
    start_login(browser)
    browser.post("/verify/", {"code": wrong_code(last_code(outbox))})
    time_machine.shift(cooldown)
    browser.post("/verify/resend/")
    time_machine.shift(cooldown)
    browser.post("/verify/call/")
    browser.post("/verify/", {"code": last_code(outbox)})
    # Step-up: change the number (a code to the current phone, then to the new one).
    browser.post("/account/phone/", {"number": NEW_NUMBER})
    browser.post("/verify/", {"code": last_code(outbox, NUMBER)})
    browser.post("/verify/", {"code": last_code(outbox, NEW_NUMBER)})
    browser.post("/logout/")

    # Password, then a code.
    browser = client_factory()
    browser.post("/login/password/", {"username": "alice", "password": PASSWORD})
    browser.post("/verify/", {"code": wrong_code(last_code(outbox, OTHER_NUMBER))})
    browser.post("/verify/", {"code": last_code(outbox, OTHER_NUMBER)})
    # Turning the second factor off takes a fresh code.
    browser.post("/account/2fa/disable/")
    browser.post("/verify/", {"code": last_code(outbox, OTHER_NUMBER)})

    # The JSON API.
    api = api_endpoints()
    caller = client_factory()
    token = caller.post(
        api["request"], {"number": "+14155550177"}, content_type="application/json"
    ).json()["request_id"]
    code = last_code(outbox, "+14155550177")
    for guess in (wrong_code(code), code):
        caller.post(
            api["check"], {"request_id": token, "code": guess}, content_type="application/json"
        )


def test_codes_have_six_digits_by_default(settings, outbox):
    defaults = settings_values({"VERIFY_CODE_LENGTH": None}, ["VERIFY_CODE_LENGTH"])
    assert defaults["VERIFY_CODE_LENGTH"] >= 6
    start_login(attacker())
    code = last_code(outbox)
    assert code.isdigit()
    assert len(code) == settings.VERIFY_CODE_LENGTH >= 6


@pytest.mark.parametrize("lifetime", [None, 600])
def test_a_code_is_dead_after_its_lifetime_of_at_most_ten_minutes(
    settings, outbox, user, time_machine, logins, lifetime
):
    if lifetime is None:
        lifetime = settings_values({"VERIFY_CODE_TTL": None}, ["VERIFY_CODE_TTL"])[
            "VERIFY_CODE_TTL"
        ]
        assert lifetime == settings.VERIFY_CODE_TTL
    settings.VERIFY_CODE_TTL = lifetime
    assert lifetime <= 600
    time_machine.move_to(time.time(), tick=False)
    browser = attacker()
    start_login(browser)
    api = api_endpoints()
    caller = attacker()
    token = caller.post(api["request"], {"number": NEW_NUMBER}, content_type="application/json")
    token = token.json()["request_id"]

    time_machine.shift(lifetime + 1)

    response = browser.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/login/"
    answer = caller.post(
        api["check"],
        {"request_id": token, "code": last_code(outbox, NEW_NUMBER)},
        content_type="application/json",
    )
    assert answer.json()["status"] != "0"
    assert logins == []
    assert pending(browser) is None


def test_codes_and_full_numbers_are_never_logged(
    settings, outbox, caplog, time_machine, generous_send_limits
):
    time_machine.move_to(time.time())
    # Everything at DEBUG, as an operator chasing a problem would run it. The
    # Vonage SDK's loggers stay as settings.LOGGING pins them (they log bodies).
    caplog.set_level(logging.DEBUG)
    for name in (
        "accounts",
        "flows",
        "verification",
        "verificationlog",
        "passwordless",
        "django",
        "django.request",
        "django.server",
    ):
        caplog.set_level(logging.DEBUG, logger=name)

    every_flow(attacker, outbox, time_machine, settings)

    codes = {message.code for message in outbox}
    numbers = {message.number for message in outbox}
    assert len(codes) >= 8 and NEW_NUMBER in numbers  # the flows really ran
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    standard = set(vars(logging.makeLogRecord({})))
    for record in caplog.records:
        extras = {key: value for key, value in vars(record).items() if key not in standard}
        line = formatter.format(record) + " " + repr(extras)
        for code in codes:
            assert code not in line, f"a code in the log: {line[:300]}"
        for number in numbers:
            for form in number_forms(number):
                assert form not in line, f"a full number in the log: {line[:300]}"


def test_codes_are_never_stored_in_plain_text(settings, outbox, time_machine, generous_send_limits):
    time_machine.move_to(time.time())
    every_flow(attacker, outbox, time_machine, settings)
    # A verification left waiting, with its code still good.
    waiting = attacker()
    start_login(waiting, "+14155550188")
    assert pending(waiting)

    stored = stored_text()
    # The scan sees the data: numbers are stored (sessions, the log), so a code would be too.
    assert "+14155550188" in stored
    assert "verification:local" in stored  # the cache table, decoded
    for message in outbox:
        assert not holds_code(stored, message.code), (
            f"code of a message to {message.number} is stored"
        )
    assert logged_in_sessions()
