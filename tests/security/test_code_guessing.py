"""Guessing a code: many wrong codes for one number, from everywhere, get nowhere.

The attacker knows the victim's number and nothing else. They start login
after login, each from a new browser and a new address, so that only the
per-number defences can stop them, and type wrong codes. What they gain is
the number of guesses that reach the provider: each one is a one-in-a-million
chance at the account.
"""

from __future__ import annotations

import pytest

from flows.counters import parse_rate
from verification import get_backend
from verification.exceptions import VerificationExpired

from ..conftest import NUMBER, last_code, messages_of, pending, start_login
from .conftest import attacker, logged_in_sessions, wrong_code

pytestmark = pytest.mark.django_db

# SECURITY.md: "capped across requests, sessions and IPs, well below 100 in a row".
WELL_BELOW_100 = 20


def wrong_code_limit(settings) -> int:
    count = parse_rate(settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER).limit
    return count


def guess_from_everywhere(outbox, attempts: int):
    """Type `attempts` wrong codes for NUMBER, a new browser and address per request.

    Returns the browser left holding the last pending verification and the
    responses to every guess.
    """
    browser, answers = None, []
    for _ in range(attempts):
        if browser is None or pending(browser) is None:
            browser = attacker()
            start_login(browser)
        right = last_code(outbox)
        answers.append(browser.post("/verify/", {"code": wrong_code(right)}))
    return browser, answers


def test_wrong_codes_for_one_number_stop_well_before_100(
    settings, outbox, upstream, user, logins, generous_send_limits
):
    _browser, answers = guess_from_everywhere(outbox, 100)

    guesses_checked = upstream.count("check")
    assert guesses_checked <= wrong_code_limit(settings)
    assert guesses_checked <= WELL_BELOW_100
    # The attacker is told to stop, on a readable page, long before the 100th try.
    refused = [response for response in answers if response.status_code == 429]
    assert len(refused) >= 100 - WELL_BELOW_100
    assert "Too many wrong codes for this phone number" in " ".join(messages_of(refused[0]))
    assert logins == []
    assert logged_in_sessions() == []


def test_wrong_codes_with_default_limits_stop_even_sooner(settings, outbox, upstream, user):
    guess_from_everywhere(outbox, 100)

    assert upstream.count("check") <= min(wrong_code_limit(settings), WELL_BELOW_100)
    # Codes sent to the victim's phone while the attacker guessed: each costs money
    # and is a message the victim did not ask for.
    count = parse_rate(settings.VERIFY_RATE_START_PER_NUMBER).limit
    assert len(outbox) <= count
    assert logged_in_sessions() == []


def test_three_wrong_codes_kill_the_request(settings, outbox, upstream, user, logins):
    browser = attacker()
    start_login(browser)
    right = last_code(outbox)
    for attempts_left in ("2 attempts left", "1 attempt left"):
        response = browser.post("/verify/", {"code": wrong_code(right)}, follow=True)
        assert attempts_left in " ".join(messages_of(response))
    response = browser.post("/verify/", {"code": wrong_code(right)}, follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert "Wrong code too many times" in " ".join(messages_of(response))
    assert pending(browser) is None

    # The right code is worth nothing now, in this session or by replaying the
    # request id upstream: the request is over and a new one must be started.
    checks_before = upstream.count("check")
    response = browser.post("/verify/", {"code": right})
    assert response["Location"] == "/login/"
    assert upstream.count("check") == checks_before
    request_id = next(argument for name, argument in upstream.calls if name == "start")
    with pytest.raises(VerificationExpired):
        get_backend().check(request_id, right)
    assert logins == []
    assert len(outbox) == 1


def test_a_correct_code_during_lockout_is_refused(
    settings, outbox, upstream, user, logins, generous_send_limits
):
    browser, _answers = guess_from_everywhere(outbox, wrong_code_limit(settings) + 3)
    checks_before = upstream.count("check")
    assert pending(browser) is not None

    # The code of the live request leaks (or its owner types it): still refused.
    response = browser.post("/verify/", {"code": last_code(outbox, NUMBER)})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many wrong codes for this phone number" in " ".join(messages_of(response))
    assert upstream.count("check") == checks_before
    assert logins == []
    assert logged_in_sessions() == []
