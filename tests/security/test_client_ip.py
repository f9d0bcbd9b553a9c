"""Spoofing the client address: a new X-Forwarded-For on every request, to dodge per-IP limits.

With no proxy configured (TRUSTED_PROXY_COUNT=0, the default) the address the
limits count is the connection's (REMOTE_ADDR), whatever the request says.
Behind one proxy, only the entry that proxy appended counts: whatever the
client wrote to the left of it is ignored.
"""

from __future__ import annotations

import random

import pytest

from flows.counters import parse_rate

from ..conftest import last_code
from ..factories import UserFactory
from .conftest import api_endpoints, attacker, numbers_in_distinct_ranges, wrong_code

pytestmark = pytest.mark.django_db

ATTACKER = "192.0.2.66"
ROUNDS = 30


def forged_headers(rng: random.Random) -> dict:
    """Return every header a site might wrongly take the client address from, made up."""

    def address():
        octets = (
            rng.randint(1, 223),
            rng.randint(0, 255),
            rng.randint(0, 255),
            rng.randint(1, 254),
        )
        return ".".join(map(str, octets))

    return {
        "HTTP_X_FORWARDED_FOR": ", ".join(address() for _ in range(rng.randint(1, 3))),
        "HTTP_X_REAL_IP": address(),
        "HTTP_FORWARDED": f"for={address()}",
        "HTTP_CLIENT_IP": address(),
        "HTTP_TRUE_CLIENT_IP": address(),
        "HTTP_CF_CONNECTING_IP": address(),
    }


def limit_of(rate: str) -> int:
    count = parse_rate(rate).limit
    return count


def test_forged_forwarded_for_does_not_escape_the_start_limit(settings, outbox):
    settings.TRUSTED_PROXY_COUNT = 0
    rng = random.Random(1)
    limit = limit_of(settings.VERIFY_RATE_START_PER_IP)
    statuses = []
    for number in numbers_in_distinct_ranges(ROUNDS):
        browser = attacker(ip=ATTACKER)  # a new session each time, one real address
        statuses.append(
            browser.post("/login/", {"number": number}, **forged_headers(rng)).status_code
        )
    assert len(outbox) == limit
    assert statuses[:limit] == [302] * limit
    assert set(statuses[limit:]) == {429}


def test_forged_forwarded_for_does_not_escape_the_check_limit(
    settings, outbox, generous_send_limits
):
    settings.TRUSTED_PROXY_COUNT = 0
    rng = random.Random(2)
    limit = limit_of(settings.VERIFY_RATE_CHECK_PER_IP)
    numbers = numbers_in_distinct_ranges(ROUNDS)
    # Each verification started from its own address: only the guessing is from one.
    browsers = []
    for number in numbers:
        browser = attacker()
        browser.post("/login/", {"number": number})
        browser.defaults["REMOTE_ADDR"] = ATTACKER
        browsers.append((browser, number))
    statuses = [
        browser.post(
            "/verify/", {"code": wrong_code(last_code(outbox, number))}, **forged_headers(rng)
        ).status_code
        for browser, number in browsers
    ]
    assert statuses[:limit] == [302] * limit
    assert set(statuses[limit:]) == {429}


def test_forged_forwarded_for_does_not_escape_the_password_limit(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    rng = random.Random(3)
    limit = limit_of(settings.LOGIN_RATE_PASSWORD_PER_IP)
    UserFactory(username="target")
    statuses = [
        attacker(ip=ATTACKER)
        .post(
            "/login/password/",
            {"username": f"guess{index}", "password": "hunter2"},
            **forged_headers(rng),
        )
        .status_code
        for index in range(ROUNDS)
    ]
    assert statuses[:limit] == [200] * limit
    assert set(statuses[limit:]) == {429}
    # Now even the right password for another account is refused from this address.
    response = attacker(ip=ATTACKER).post(
        "/login/password/",
        {"username": "target", "password": "correct horse battery staple"},
        **forged_headers(rng),
    )
    assert response.status_code == 429


def test_forged_forwarded_for_does_not_escape_the_api_limit(settings, outbox):
    settings.TRUSTED_PROXY_COUNT = 0
    rng = random.Random(4)
    path = api_endpoints()["request"]
    limit = limit_of(settings.VERIFY_RATE_START_PER_IP)
    statuses = [
        attacker(ip=ATTACKER)
        .post(path, {"number": number}, content_type="application/json", **forged_headers(rng))
        .status_code
        for number in numbers_in_distinct_ranges(ROUNDS)
    ]
    assert len(outbox) == limit
    assert statuses[:limit] == [200] * limit
    assert set(statuses[limit:]) == {429}


def test_behind_one_proxy_only_the_address_it_saw_counts(settings, outbox):
    settings.TRUSTED_PROXY_COUNT = 1
    rng = random.Random(5)
    limit = limit_of(settings.VERIFY_RATE_START_PER_IP)
    statuses = []
    for number in numbers_in_distinct_ranges(ROUNDS):
        headers = forged_headers(rng)
        # The proxy (REMOTE_ADDR 10.0.0.1) appends the address it got the request from.
        headers["HTTP_X_FORWARDED_FOR"] += f", {ATTACKER}"
        browser = attacker(ip="10.0.0.1")
        statuses.append(browser.post("/login/", {"number": number}, **headers).status_code)
    assert len(outbox) == limit
    assert set(statuses[limit:]) == {429}


def test_behind_one_proxy_distinct_clients_are_counted_apart(settings, outbox):
    """The control: the header is honoured when a proxy is configured, so the tests can fail."""
    settings.TRUSTED_PROXY_COUNT = 1
    limit = limit_of(settings.VERIFY_RATE_START_PER_IP)
    for index, number in enumerate(numbers_in_distinct_ranges(limit + 3)):
        browser = attacker(ip="10.0.0.1")
        response = browser.post(
            "/login/", {"number": number}, HTTP_X_FORWARDED_FOR=f"198.51.100.{index + 1}"
        )
        assert response.status_code == 302
    assert len(outbox) == limit + 3
