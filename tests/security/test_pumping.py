"""SMS pumping: make the site send codes to numbers the attacker is paid for.

A pumping run comes from a botnet (a new address and session per request),
walks a range of premium or foreign numbers, and never types a code. The
site must refuse numbers outside its countries and costly number types
outright, slow a run through one number range to VERIFY_PREFIX_RATE, and
stop all new sends at the site-wide caps while codes already sent still work.
What the attacker gains is what went out: the outbox.
"""

from __future__ import annotations

import logging
import time

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from flows.counters import Counter, parse_rate
from verificationlog.models import Outcome, VerificationLog

from ..conftest import last_code, pending
from ..factories import UserFactory
from .conftest import (
    api_endpoints,
    attacker,
    numbers_in_distinct_ranges,
    numbers_in_range,
    page_text,
)

pytestmark = pytest.mark.django_db

# Numbers attackers are paid for, refused by default.
REFUSED_TYPES = {
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "uan": PhoneNumberType.UAN,
    "pager": PhoneNumberType.PAGER,
    "voicemail": PhoneNumberType.VOICEMAIL,
}
PER_TYPE = 8


def example_numbers(number_type: int, count: int, *, regions=None) -> list[str]:
    """Return up to `count` distinct valid numbers of `number_type`, the US's and UK's first."""
    found = []
    regions = sorted(regions or phonenumbers.SUPPORTED_REGIONS)
    for region in ["US", "GB", *regions]:
        example = phonenumbers.example_number_for_type(region, number_type)
        if (
            example is not None
            and phonenumbers.is_valid_number(example)
            and phonenumbers.number_type(example) == number_type
        ):
            number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            if number not in found:
                found.append(number)
        if len(found) == count:
            break
    return found


def mobile_numbers_outside(allowed: set[str], count: int) -> list[str]:
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS - allowed):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None or not phonenumbers.is_valid_number(example):
            continue
        if phonenumbers.region_code_for_number(example) in allowed:
            continue
        numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    # The Caribbean shares +1 with the United States: classic pumping destinations.
    caribbean = [n for n in numbers if n.startswith("+1")]
    others = [n for n in numbers if not n.startswith("+1")]
    return (caribbean + others)[:count]


def pump(numbers: list[str]) -> list:
    """Ask for a code to each number from a new browser and address; return the answers."""
    answers = []
    for number in numbers:
        browser = attacker()
        response = browser.post("/login/", {"number": number})
        answers.append((browser, response))
    return answers


def assert_refused_on_the_form(browser, response) -> None:
    assert response.status_code == 200
    assert response.context["form"].errors.get("number"), page_text(response)
    assert pending(browser) is None


def test_a_run_over_one_number_range_sends_at_most_the_prefix_rate(settings, outbox):
    count = parse_rate(settings.VERIFY_PREFIX_RATE).limit
    assert settings.VERIFY_PREFIX_DIGITS <= 7
    numbers = numbers_in_range("+1415555", 50)  # one range: +1 415 555…

    answers = pump(numbers)

    assert 0 < len(outbox) <= count
    refused = [response for _browser, response in answers if response.status_code != 302]
    assert len(refused) >= 50 - count
    assert all(response.status_code == 429 for response in refused)
    assert "Nothing was sent." in page_text(refused[-1])


def test_the_default_range_rate_stops_a_run_and_lets_a_busy_city_through(outbox, time_machine):
    """Defaults: a run over one exchange stops early; a city's ten exchanges all get through."""
    # Inside one window of the limits: a run that crossed into the next
    # window would be counted afresh there, as the fixed windows mean to.
    time_machine.move_to("2030-01-01 12:00:30Z", tick=False)
    # Thirty people of San Francisco at once, whose numbers share their first
    # five digits (+1 415 52…), and a run of sixty numbers in +1 415 555….
    city = [
        number for exchange in range(520, 530) for number in numbers_in_range(f"+1415{exchange}", 3)
    ]
    run = numbers_in_range("+1415555", 60)

    city_answers = pump(city)
    run_answers = pump(run)

    assert [response.status_code for _browser, response in city_answers] == [302] * len(city)
    sent_to_the_run = [message for message in outbox if message.number in run]
    assert 10 <= len(sent_to_the_run) <= 30
    assert sum(response.status_code == 429 for _browser, response in run_answers) >= 30


def test_a_run_over_blocked_countries_sends_nothing(settings, outbox):
    settings.VERIFY_ALLOWED_COUNTRIES = ["US", "GB"]
    numbers = mobile_numbers_outside({"US", "GB"}, 40)
    assert len(numbers) == 40

    answers = pump(numbers)

    assert outbox == []
    for browser, response in answers:
        assert_refused_on_the_form(browser, response)
    # Each refusal is on record for the operator.
    refused = VerificationLog.objects.filter(outcome=Outcome.REFUSED)
    assert set(refused.values_list("number", flat=True)) == set(numbers)
    # The control: allowed countries still get their codes.
    pump(["+14155550100", "+447400123456"])
    assert [message.number for message in outbox] == ["+14155550100", "+447400123456"]


@pytest.mark.parametrize("type_name", REFUSED_TYPES)
def test_costly_number_types_send_nothing(outbox, type_name):
    numbers = example_numbers(REFUSED_TYPES[type_name], PER_TYPE)
    assert numbers, f"no example {type_name} numbers"
    if type_name == "premium_rate":
        assert numbers[:2] == ["+19002345678", "+449012345678"]

    answers = pump(numbers)

    assert outbox == []
    for browser, response in answers:
        assert_refused_on_the_form(browser, response)


def test_premium_rate_numbers_are_refused_on_every_way_in(outbox):
    """The account page and the API send codes too: the same defences apply."""
    premium = example_numbers(PhoneNumberType.PREMIUM_RATE, 4, regions={"US", "GB", "FR", "DE"})
    user = UserFactory(phone_number_for_2fa=None)
    browser = attacker()
    browser.force_login(user)
    for number in premium:
        response = browser.post("/account/phone/", {"number": number})
        assert response.status_code == 200
        assert response.context["form"].errors.get("number")
        api = attacker().post(
            api_endpoints()["request"], {"number": number}, content_type="application/json"
        )
        assert api.status_code == 400
        assert api.json()["status"] != "0"
        assert "request_id" not in api.json()
    assert outbox == []


def test_voip_numbers_are_allowed_unless_refused_in_settings(settings, outbox):
    numbers = example_numbers(PhoneNumberType.VOIP, 3)
    pump(numbers)
    assert len(outbox) == len(numbers)

    outbox.clear()
    settings.VERIFY_BLOCK_VOIP = True
    for browser, response in pump(numbers):
        assert_refused_on_the_form(browser, response)
    assert outbox == []


@pytest.mark.parametrize("cap", ["VERIFY_MAX_SENDS_PER_HOUR", "VERIFY_MAX_SENDS_PER_DAY"])
def test_the_site_wide_cap_stops_sending_and_alerts_the_operator(
    settings, outbox, caplog, logins, cap
):
    setattr(settings, cap, 3)
    numbers = numbers_in_distinct_ranges(8)
    for number in numbers:
        UserFactory(phone_number_for_2fa=number)

    with caplog.at_level(logging.INFO):
        answers = pump(numbers)

    assert [message.number for message in outbox] == numbers[:3]
    for browser, response in answers[3:]:
        assert response.status_code < 500
        assert pending(browser) is None
        page = page_text(browser.get("/login/")) + page_text(response)
        assert "temporarily unavailable" in page
    alerts = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert alerts, "no ERROR line for the operator's alerting"
    assert any("cap" in record.getMessage() for record in alerts)

    # People who already got their code still log in.
    for (browser, _response), number in zip(answers[:3], numbers[:3], strict=True):
        response = browser.post("/verify/", {"code": last_code(outbox, number)})
        assert response["Location"] == "/"
    assert len(logins) == 3


def test_hammering_resend_and_call_sends_at_most_the_number_limit(settings, outbox, time_machine):
    """Toll fraud through one verification: ask again and again for an SMS or a call."""
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    rate = parse_rate(settings.VERIFY_RATE_START_PER_NUMBER)
    count, period = rate.limit, rate.period
    cooldown = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1
    actions = min(10, period // cooldown - 1)
    # The whole run inside one window of the per-number limit.
    _start, end = Counter("verify.start.number", "+14155550100", rate).window()
    time_machine.shift(end - int(time.time()) + 1)
    browser = attacker()
    browser.post("/login/", {"number": "+14155550100"})
    answers = []
    for action in (["resend", "call"] * 10)[:actions]:
        time_machine.shift(cooldown)
        browser.defaults["REMOTE_ADDR"] = attacker().defaults["REMOTE_ADDR"]  # a botnet
        answers.append(browser.post(f"/verify/{action}/"))

    assert len(outbox) <= count
    refused = [response for response in answers if response.status_code == 429]
    assert refused, "nothing stopped the run"
    assert int(refused[-1]["Retry-After"]) > 0
    assert "Too many attempts" in page_text(refused[-1])
    assert "Nothing was sent." in page_text(refused[-1])
