"""Rate limits on sending and checking codes, as a person or an attacker meets them."""

import datetime
import math
import re
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from flows.counters import Counter, Rate

from .conftest import NUMBER, last_code, messages_of, pending
from .factories import UserFactory

pytestmark = pytest.mark.django_db

START = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
NUMBERS = [f"+1415555{index:04d}" for index in range(101, 111)]
RATE_LIMITED = re.compile(r"^Too many attempts\. Wait (\d+) (minute|second)s?, then try again\.$")
LOCKED = re.compile(
    r"^Too many wrong codes for this phone number\. No code is accepted for it for "
    r"(\d+) (minute|second)s?; try again after that\.$"
)


def wrong(code):
    return f"{(int(code[0]) + 1) % 10}{code[1:]}"


def start(client, number=NUMBER, ip="203.0.113.1", **extra):
    return client.post("/login/", {"number": number}, REMOTE_ADDR=ip, **extra)


def check(client, code, ip="203.0.113.1"):
    return client.post("/verify/", {"code": code}, REMOTE_ADDR=ip)


def assert_429(response, pattern=RATE_LIMITED, longest=None):
    """The refusal a person sees: status 429, a page, a message saying how long to wait."""
    assert response.status_code == 429
    html = response.content.decode()
    assert "<h1>Too many attempts</h1>" in html
    assert "Nothing was sent." in html
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    if longest is not None:
        assert retry_after <= longest
    # Notices of earlier steps not yet shown come first; the refusal is last.
    text = messages_of(response)[-1]
    match = pattern.match(text)
    assert match, text
    assert text in html
    amount, unit = int(match[1]), match[2]
    if unit == "second":
        assert amount == retry_after
    else:
        assert amount == math.ceil(retry_after / 60)
    return retry_after


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def new_window(clock, value, rate_period):
    """Move the clock to the first second of a fresh rate-limit window for `value`."""
    _start, end = Counter("any", value, Rate(limit=1, period=rate_period)).window()
    clock.shift(end - int(time.time()) + 1)


# Starting a verification -----------------------------------------------------


def test_starts_are_limited_to_five_per_ip(client, outbox):
    for number in NUMBERS[:5]:
        assert start(client, number)["Location"] == "/verify/"
    response = start(client, NUMBERS[5])
    assert_429(response, longest=15 * 60)
    assert len(outbox) == 5
    assert pending(client)["number"] == NUMBERS[4]
    # Another client is not affected.
    assert start(Client(), NUMBERS[5], ip="203.0.113.2")["Location"] == "/verify/"


def test_an_ipv6_client_is_counted_by_its_network_not_its_address(outbox):
    # One subscriber holds a whole /64: a fresh address per request is free.
    for index, number in enumerate(NUMBERS[:5]):
        response = start(Client(), number, ip=f"2001:db8:1:2::{index + 1:x}")
        assert response["Location"] == "/verify/"
    assert_429(start(Client(), NUMBERS[5], ip="2001:db8:1:2:ffff:ffff:ffff:ffff"))
    # The next /64 is another subscriber.
    assert start(Client(), NUMBERS[5], ip="2001:db8:1:3::1")["Location"] == "/verify/"
    assert len(outbox) == 6


def test_an_ipv6_network_can_be_narrowed_to_single_addresses(outbox, settings):
    settings.RATELIMIT_IPV6_MASK = 128
    for index, number in enumerate(NUMBERS[:6]):
        response = start(Client(), number, ip=f"2001:db8:1:2::{index + 1:x}")
        assert response["Location"] == "/verify/"


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(outbox):
    for number in NUMBERS[:5]:
        assert start(Client(), number, ip="203.0.113.7")["Location"] == "/verify/"
    assert_429(start(Client(), NUMBERS[5], ip="::ffff:203.0.113.7"))


def test_the_log_keeps_the_full_ipv6_address(outbox):
    from verificationlog.models import VerificationLog

    start(Client(), ip="2001:db8:1:2::abcd")
    assert VerificationLog.objects.get().ip == "2001:db8:1:2::abcd"


def test_forwarded_for_header_does_not_change_the_ip_counted(client, outbox):
    for index, number in enumerate(NUMBERS[:5]):
        response = start(client, number, HTTP_X_FORWARDED_FOR=f"192.0.2.{index + 1}")
        assert response["Location"] == "/verify/"
    response = start(client, NUMBERS[5], HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert_429(response)
    response = start(Client(), NUMBERS[6], HTTP_X_FORWARDED_FOR="192.0.2.201, 192.0.2.202")
    assert_429(response)
    assert len(outbox) == 5


def test_starts_are_limited_to_three_per_number(outbox):
    for index in range(3):
        client = Client()
        assert start(client, ip=f"198.51.100.{index + 1}")["Location"] == "/verify/"
        client.post("/verify/cancel/")
    response = start(Client(), ip="198.51.100.50")
    assert_429(response, longest=15 * 60)
    assert [message.number for message in outbox] == [NUMBER] * 3


def test_a_client_over_its_limit_does_not_use_up_the_numbers_starts(outbox, settings):
    # Someone hammering a victim's number from one address gets refused for
    # the address; the victim, elsewhere, can still ask for their codes.
    settings.VERIFY_RATE_START_PER_IP = "1/15m"
    client = Client()
    assert start(client, ip="198.51.100.60")["Location"] == "/verify/"
    client.post("/verify/cancel/")
    for _ in range(5):
        assert_429(start(Client(), ip="198.51.100.60"))
    for index in range(2):
        client = Client()
        assert start(client, ip=f"198.51.100.{61 + index}")["Location"] == "/verify/"
        client.post("/verify/cancel/")
    assert len(outbox) == 3
    assert_429(start(Client(), ip="198.51.100.63"))


def test_refused_start_keeps_the_earlier_pending_verification(client, outbox, settings):
    settings.VERIFY_RATE_START_PER_IP = "1/15m"
    start(client, NUMBERS[0])
    before = pending(client)
    assert_429(start(client, NUMBERS[1]))
    assert pending(client) == before
    assert len(outbox) == 1


def test_resend_and_call_count_as_starts(client, outbox, clock):
    new_window(clock, NUMBER, 15 * 60)
    start(client)
    clock.shift(31)
    assert client.post("/verify/resend/", REMOTE_ADDR="203.0.113.1")["Location"] == "/verify/"
    clock.shift(31)
    assert client.post("/verify/call/", REMOTE_ADDR="203.0.113.1")["Location"] == "/verify/"
    assert len(outbox) == 3
    clock.shift(31)
    before = pending(client)
    response = client.post("/verify/resend/", REMOTE_ADDR="203.0.113.1")
    assert_429(response)
    assert len(outbox) == 3
    assert pending(client) == before


def test_resends_count_against_the_ip_too(outbox, clock):
    new_window(clock, "203.0.113.1", 15 * 60)
    clients = [Client() for _ in range(3)]
    for client, number in zip(clients, NUMBERS, strict=False):
        start(client, number)
    clock.shift(31)
    for client in clients[:2]:
        assert client.post("/verify/resend/", REMOTE_ADDR="203.0.113.1")["Location"] == "/verify/"
    assert len(outbox) == 5
    assert_429(clients[2].post("/verify/resend/", REMOTE_ADDR="203.0.113.1"))
    assert len(outbox) == 5


def test_start_limits_come_from_settings(client, outbox, settings):
    settings.VERIFY_RATE_START_PER_IP = "2/15m"
    for number in NUMBERS[:2]:
        assert start(client, number)["Location"] == "/verify/"
    assert_429(start(client, NUMBERS[2]))
    settings.VERIFY_RATE_START_PER_IP = "100/15m"
    settings.VERIFY_RATE_START_PER_NUMBER = "1/h"
    other = Client()
    assert start(other, NUMBERS[3], ip="203.0.113.9")["Location"] == "/verify/"
    other.post("/verify/cancel/", REMOTE_ADDR="203.0.113.9")
    assert_429(start(other, NUMBERS[3], ip="203.0.113.9"), longest=3600)


# Checking codes -------------------------------------------------------------


def test_checks_are_limited_to_five_per_session(client, outbox):
    start(client)
    for _ in range(3):  # the third kills the request
        check(client, wrong(last_code(outbox)))
    start(client)
    for _ in range(2):
        assert check(client, wrong(last_code(outbox)))["Location"] == "/verify/"
    before = pending(client)
    # The sixth code in five minutes is refused, even the right one.
    response = check(client, last_code(outbox))
    assert_429(response, longest=5 * 60)
    assert SESSION_KEY not in client.session
    assert pending(client) == before


def test_checks_are_limited_to_ten_per_ip(outbox):
    ip = "203.0.113.20"
    for number, wrong_codes in zip(NUMBERS, [3, 3, 3, 1], strict=False):
        client = Client()
        start(client, number, ip=ip)
        for _ in range(wrong_codes):
            check(client, wrong(last_code(outbox, number)), ip=ip)
    # Ten codes from this address: the eleventh is refused, in a fresh session too.
    response = check(client, last_code(outbox, NUMBERS[3]), ip=ip)
    assert_429(response, longest=5 * 60)
    assert SESSION_KEY not in client.session
    # From another address the same session's code still works.
    response = check(client, last_code(outbox, NUMBERS[3]), ip="203.0.113.21")
    assert response["Location"] == "/"
    assert SESSION_KEY in client.session


def test_check_limits_come_from_settings(client, outbox, settings):
    settings.VERIFY_RATE_CHECK_PER_SESSION = "2/5m"
    start(client)
    for _ in range(2):
        check(client, wrong(last_code(outbox)))
    assert_429(check(client, last_code(outbox)))


def test_malformed_codes_do_not_count(client, outbox):
    start(client)
    for _ in range(10):
        assert check(client, "12ab").status_code == 200
    assert check(client, last_code(outbox))["Location"] == "/"


# Wrong codes per number --------------------------------------------------------


def test_wrong_codes_per_number_are_capped_across_sessions_and_ips(outbox, settings, clock):
    """Past ten wrong codes in an hour, nobody logs in with the number, even with the right code."""
    settings.VERIFY_RATE_START_PER_NUMBER = "20/15m"
    owner = UserFactory(phone_number_for_2fa=NUMBER)
    new_window(clock, NUMBER, 3600)
    for index, wrong_codes in enumerate([3, 3, 3, 1]):
        attacker = Client()
        ip = f"198.51.100.{index + 1}"
        assert start(attacker, ip=ip)["Location"] == "/verify/"
        for _ in range(wrong_codes):
            check(attacker, wrong(last_code(outbox)), ip=ip)
    response = check(attacker, last_code(outbox), ip="198.51.100.4")
    retry_after = assert_429(response, pattern=LOCKED, longest=3600)
    assert SESSION_KEY not in attacker.session
    attacker.post("/verify/cancel/", REMOTE_ADDR="198.51.100.4")

    # The owner, from their own browser and address, is refused too: no code
    # is even sent, since none would be accepted.
    owner_client = Client()
    sent = len(outbox)
    response = start(owner_client, ip="192.0.2.10")
    assert_429(response, pattern=LOCKED, longest=3600)
    assert len(outbox) == sent
    assert SESSION_KEY not in owner_client.session

    # Once the window has passed, the right code works again.
    clock.shift(retry_after + 1)
    assert start(owner_client, ip="192.0.2.10")["Location"] == "/verify/"
    response = check(owner_client, last_code(outbox), ip="192.0.2.10")
    assert response["Location"] == "/"
    assert int(owner_client.session[SESSION_KEY]) == owner.pk


def test_lockout_message_says_when_to_try_again(outbox, settings, clock):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "2/h"
    new_window(clock, NUMBER, 3600)
    client = Client()
    start(client)
    for _ in range(2):
        check(client, wrong(last_code(outbox)))
    response = check(client, last_code(outbox))
    retry_after = assert_429(response, pattern=LOCKED, longest=3600)
    # A fresh window began a second ago: the lock lasts about an hour.
    assert retry_after > 3500
    assert "for 60 minutes" in messages_of(response)[-1]


def test_wrong_codes_below_the_cap_do_not_lock(outbox, settings):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "3/h"
    client = Client()
    start(client)
    for _ in range(2):
        check(client, wrong(last_code(outbox)))
    assert check(client, last_code(outbox))["Location"] == "/"
