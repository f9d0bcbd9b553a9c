"""A refused request uses up nobody's allowance, and counters count exactly when requests collide.

Each limit is a counter in the shared cache. An attacker who cannot get a
code sent may still try to spend the allowance of others: ask for a number
whose own limit is reached, again and again, so that the number's range and
the site-wide caps fill up with starts that sent nothing; or ask for one
range until the number of a victim in it is refused. A start or a check that
one limit refuses is therefore counted by none. And a counter read and then
written by two requests at once must not count them once (the database
cache's increment is a read and a write): the counting is serialized there.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory

from flows import counters, defences, limits
from flows.exceptions import RateLimited, SendingPaused

from ..conftest import last_code, pending
from .conftest import attacker, numbers_in_range, page_text, run_together

pytestmark = pytest.mark.django_db

RANGE = "+1415555"  # one range of VERIFY_PREFIX_DIGITS=6: +1 415 555…


def counted(group: str, value: str, rate: str) -> int:
    """Return what the counter `group` holds for `value` in this window (read, not counted)."""
    return counters.read(counters.Counter(group, value, counters.parse_rate(rate)))


def prefix_count(number: str) -> int:
    return counted(
        "verify.start.prefix",
        defences.number_prefix(number),
        django_settings.VERIFY_PREFIX_RATE,
    )


def number_count(number: str) -> int:
    return counted("verify.start.number", number, django_settings.VERIFY_RATE_START_PER_NUMBER)


def site_count() -> int:
    return counted(
        "verify.start.site.hour", "site", f"{django_settings.VERIFY_MAX_SENDS_PER_HOUR}/h"
    )


def ask(number: str, ip: str | None = None):
    """Ask for a code to `number` from a new browser; return (browser, response)."""
    browser = attacker(ip)
    return browser, browser.post("/login/", {"number": number})


def assert_sent(browser, response) -> None:
    assert response.status_code == 302, page_text(response)
    assert response["Location"] == "/verify/"
    assert pending(browser) is not None


# Starts ------------------------------------------------------------------------


def test_starts_refused_for_the_range_leave_each_number_and_the_site_alone(settings, outbox):
    """A run over one range stops at the range's rate; the numbers it tried are not used up."""
    settings.VERIFY_RATE_START_PER_NUMBER = "1/15m"
    settings.VERIFY_PREFIX_RATE = "3/10m"
    numbers = numbers_in_range(RANGE, 10)
    for number in numbers[:3]:
        assert_sent(*ask(number))
    for number in numbers[3:]:
        _browser, response = ask(number)
        assert response.status_code == 429
        assert "Nothing was sent." in page_text(response)

    assert len(outbox) == 3
    assert prefix_count(numbers[0]) == 3
    assert site_count() == 3
    for number in numbers[3:]:
        assert number_count(number) == 0
    # Elsewhere, one of the refused numbers' owners gets their code at once:
    # the refusals did not count against the number.
    settings.VERIFY_PREFIX_RATE = "100/10m"
    assert_sent(*ask(numbers[5]))


def test_starts_refused_by_the_site_cap_leave_numbers_and_ranges_alone(settings, outbox):
    settings.VERIFY_MAX_SENDS_PER_HOUR = 2
    numbers = numbers_in_range(RANGE, 4)
    for number in numbers[:2]:
        assert_sent(*ask(number))
    for number in numbers[2:]:
        _browser, response = ask(number)
        assert response.status_code == 200
        assert "temporarily unavailable" in page_text(response)

    assert len(outbox) == 2
    assert site_count() == 2
    assert prefix_count(numbers[0]) == 2
    assert [number_count(number) for number in numbers[2:]] == [0, 0]


def test_a_start_refused_by_the_number_does_not_count_against_the_client(settings, outbox):
    """Asking in vain for a number at its limit leaves the address its own starts."""
    settings.VERIFY_RATE_START_PER_IP = "2/15m"
    settings.VERIFY_RATE_START_PER_NUMBER = "1/15m"
    first, second = numbers_in_range(RANGE, 2)
    browser, response = ask(first)  # from elsewhere
    assert_sent(browser, response)
    browser.post("/verify/cancel/")
    for _ in range(5):
        _browser, response = ask(first, ip="198.51.100.9")
        assert response.status_code == 429
    assert_sent(*ask(second, ip="198.51.100.9"))


def test_checks_refused_for_a_locked_number_do_not_count_against_the_address(settings, outbox):
    """Checks refused because the number is locked leave the address's allowance to the others."""
    settings.VERIFY_RATE_CHECK_PER_IP = "4/5m"
    locked, other = numbers_in_range(RANGE, 2)
    neighbour = attacker("198.51.100.21")
    assert_sent(neighbour, neighbour.post("/login/", {"number": locked}))
    owner = attacker("198.51.100.21")
    assert_sent(owner, owner.post("/login/", {"number": other}))
    # Wrong codes typed elsewhere, for other requests, lock the number.
    elsewhere = RequestFactory().post("/verify/", REMOTE_ADDR="203.0.113.66")
    for _ in range(10):
        limits.record_wrong_code(elsewhere, number=locked)

    for _ in range(5):
        response = neighbour.post("/verify/", {"code": last_code(outbox, locked)})
        assert response.status_code == 429
        assert "Too many wrong codes for this phone number" in page_text(response)

    # The address's checks are whole: the owner's code works.
    response = owner.post("/verify/", {"code": last_code(outbox, other)})
    assert response["Location"] == "/"


def test_a_check_refused_for_the_session_leaves_the_address_alone(settings, outbox):
    """One session hammering past its own limit cannot use up the address's checks for others."""
    settings.VERIFY_RATE_CHECK_PER_SESSION = "2/5m"
    settings.VERIFY_RATE_CHECK_PER_IP = "4/5m"
    hammering_number, neighbour_number = numbers_in_range(RANGE, 2)
    hammering = attacker("198.51.100.30")
    assert_sent(hammering, hammering.post("/login/", {"number": hammering_number}))
    neighbour = attacker("198.51.100.30")
    assert_sent(neighbour, neighbour.post("/login/", {"number": neighbour_number}))
    right = last_code(outbox, hammering_number)
    wrong = "000000" if right != "000000" else "111111"
    statuses = [hammering.post("/verify/", {"code": wrong}).status_code for _ in range(10)]
    assert statuses == [302, 302] + [429] * 8

    response = neighbour.post("/verify/", {"code": last_code(outbox, neighbour_number)})
    assert response["Location"] == "/"


def test_a_number_refused_for_its_range_keeps_its_own_starts(settings):
    """Refused by its range, a number keeps its own starts: the next refusal is the site's."""
    settings.VERIFY_RATE_START_PER_NUMBER = "1/15m"
    settings.VERIFY_PREFIX_RATE = "1/10m"
    settings.VERIFY_MAX_SENDS_PER_HOUR = 1
    request = RequestFactory().post("/login/", REMOTE_ADDR="198.51.100.40")
    first, second = numbers_in_range(RANGE, 2)
    limits.limit_start(request, number=first)
    with pytest.raises(RateLimited) as number_over:
        limits.limit_start(request, number=first)
    assert number_over.value.scope == "verify.start.number"
    with pytest.raises(RateLimited) as range_over:
        limits.limit_start(request, number=second)
    assert range_over.value.scope == "verify.start.prefix"
    settings.VERIFY_PREFIX_RATE = "10/10m"
    with pytest.raises(SendingPaused):
        limits.limit_start(request, number=second)
    assert number_count(second) == 0


# Counting under concurrency --------------------------------------------------------

TOGETHER = 12


@pytest.mark.django_db(transaction=True)
def test_starts_arriving_together_let_exactly_the_range_rate_through(concurrent_database, settings):
    """Twelve starts at once in one range of rate 5: five pass, seven are refused and not counted.

    On the configured cache: the database cache here (its increment is a read
    and a write), Redis in the services run.
    """
    settings.VERIFY_PREFIX_RATE = "5/10m"
    numbers = numbers_in_range(RANGE, TOGETHER)

    def start(index):
        request = RequestFactory().post("/login/", REMOTE_ADDR=f"198.51.100.{index + 1}")
        try:
            limits.limit_start(request, number=numbers[index])
        except RateLimited as exc:
            return exc.scope
        return "sent"

    answers, errors = run_together(TOGETHER, start)

    assert errors == []
    assert sorted(answers) == sorted(["sent"] * 5 + ["verify.start.prefix"] * (TOGETHER - 5))
    assert prefix_count(numbers[0]) == 5
    assert site_count() == 5
    assert sum(number_count(number) for number in numbers) == 5


@pytest.mark.django_db(transaction=True)
def test_wrong_codes_recorded_together_are_each_counted(concurrent_database, settings):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "100/h"
    number = numbers_in_range(RANGE, 1)[0]

    def record(index):
        request = RequestFactory().post("/verify/", REMOTE_ADDR=f"198.51.100.{index + 1}")
        limits.record_wrong_code(request, number=number)

    _answers, errors = run_together(TOGETHER, record)

    assert errors == []
    assert counted(limits.WRONG_CODES, number, "100/h") == TOGETHER
