"""One code per person: a double click, a second tab or a walk-away costs no second SMS.

A number whose code is on its way is adopted by whoever asks for it again:
nothing is sent, and the code that arrives works in whichever browser asked.
The attempt budget stays the request's: three wrong codes end it, whichever
sessions typed them. A request nobody waits for any more is cancelled upstream.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from flows.live_requests import (
    LiveRequest,
    StartUnderWay,
    live_request_claim,
    live_request_release,
    live_request_save,
)
from tests.conftest import NUMBER, OTHER_NUMBER, last_code, messages_of, pending, start_login
from tests.factories import UserFactory

from .conftest import attacker, logged_in_sessions, wrong_code

pytestmark = pytest.mark.django_db

ADOPTED = "We already sent a code to +1 415 ••• ••00 a moment ago: type it here."


def test_a_double_click_sends_one_code_and_the_second_session_logs_in(upstream, logins):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    # The browser throws away the first answer: two sessions, one person.
    thrown_away, kept = attacker(ip="198.51.100.7"), attacker(ip="198.51.100.7")
    start_login(thrown_away)
    response = start_login(kept, follow=True)

    assert ADOPTED in messages_of(response)
    assert upstream.count("start") == 1
    response = kept.post("/verify/", {"code": last_code(upstream_outbox())})
    assert response["Location"] == "/"
    assert logins == [user.pk]


def test_two_tabs_share_one_code_and_either_logs_in(outbox, logins):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    browser = attacker()
    start_login(browser)  # the first tab
    response = start_login(browser, follow=True)  # the second tab, same cookies

    assert ADOPTED in messages_of(response)
    assert len(outbox) == 1
    assert browser.post("/verify/", {"code": last_code(outbox)})["Location"] == "/"
    assert logins == [user.pk]


def test_a_parallel_double_submit_reaches_the_provider_once(
    concurrent_database, upstream, settings, logins
):
    """Two POSTs of the number at the same moment: one start upstream, both browsers wait on it."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    # The provider is slow, as it is: the second POST arrives while the first waits.
    upstream.latency["start"] = 0.3
    barrier = threading.Barrier(2)
    browsers = [attacker(ip="198.51.100.8"), attacker(ip="198.51.100.8")]
    answers, errors = [], []

    def submit(browser):
        try:
            barrier.wait(timeout=30)
            answers.append(start_login(browser))
        except Exception as exc:  # collected: a crash is a finding, reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert [answer["Location"] for answer in answers] == ["/verify/", "/verify/"]
    assert upstream.count("start") == 1
    assert pending(browsers[0])["request_id"] == pending(browsers[1])["request_id"]
    code = last_code(upstream_outbox())
    assert browsers[1].post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]


def test_adopted_requests_share_one_attempt_budget(outbox, logins):
    UserFactory(phone_number_for_2fa=NUMBER)
    first, second = attacker(), attacker()
    start_login(first)
    start_login(second)
    right = last_code(outbox)

    first.post("/verify/", {"code": wrong_code(right)})
    second.post("/verify/", {"code": wrong_code(right)})
    response = first.post("/verify/", {"code": wrong_code(right)}, follow=True)

    assert "Wrong code too many times" in " ".join(messages_of(response))
    # The request is over for its other holder too: the right code opens nothing.
    assert second.post("/verify/", {"code": right})["Location"] == "/login/"
    assert logins == []
    assert len(outbox) == 1


def test_a_code_used_in_one_session_is_over_in_the_other(outbox, logins):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    first, second = attacker(), attacker()
    start_login(first)
    start_login(second)
    code = last_code(outbox)

    assert first.post("/verify/", {"code": code})["Location"] == "/"
    assert second.post("/verify/", {"code": code})["Location"] == "/login/"
    assert logins == [user.pk]
    assert len(logged_in_sessions(user.pk)) == 1
    # Once used, the number starts afresh: a new code, not the used request.
    start_login(attacker())
    assert len(outbox) == 2


def test_a_request_for_another_step_is_not_adopted(outbox):
    """A code on its way to approve a change never logs anyone in, nor the other way round."""
    user = UserFactory(phone_number_for_2fa=NUMBER, is_2fa_enabled=True)
    owner = attacker()
    owner.force_login(user)
    owner.post("/account/2fa/disable/")

    response = start_login(attacker(), follow=True)

    assert pending(response.client) is None
    assert ADOPTED not in messages_of(response)
    assert len(outbox) == 1


def test_an_adopted_request_keeps_its_own_expiry(outbox, time_machine):
    UserFactory(phone_number_for_2fa=NUMBER)
    time_machine.move_to("2026-12-03 12:00:00", tick=False)
    first = attacker()
    start_login(first)
    time_machine.move_to("2026-12-03 12:04:00", tick=False)
    second = attacker()
    start_login(second)

    assert pending(second)["started_at"] == pending(first)["started_at"]
    # Past the first start's lifetime (300 s), the code is over for both.
    time_machine.move_to("2026-12-03 12:05:01", tick=False)
    response = second.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert "expired" in " ".join(messages_of(response))


def test_a_replaced_request_is_cancelled_upstream(upstream):
    """The person starts over with another number: the first request's workflow stops."""
    browser = attacker()
    start_login(browser)
    first = pending(browser)["request_id"]
    start_login(browser, OTHER_NUMBER)

    assert ("cancel", first) in upstream.calls
    # The first number is free again: asking for it sends a new code.
    start_login(attacker())
    assert upstream.count("start") == 3


def test_logging_out_cancels_the_pending_request_upstream(upstream):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    browser = attacker()
    browser.force_login(user)
    browser.post("/account/2fa/disable/")
    request_id = pending(browser)["request_id"]

    browser.post("/logout/")

    assert ("cancel", request_id) in upstream.calls


def test_logging_in_with_a_password_cancels_the_phone_login_upstream(upstream):
    user = UserFactory(username="kim", phone_number_for_2fa=NUMBER)
    user.set_password("a long passphrase 7")
    user.save()
    browser = attacker()
    start_login(browser)
    request_id = pending(browser)["request_id"]

    response = browser.post(
        "/login/password/", {"username": "kim", "password": "a long passphrase 7"}
    )

    assert response["Location"] == "/"
    assert ("cancel", request_id) in upstream.calls
    assert pending(browser) is None


def test_the_api_gets_a_token_for_the_web_login_on_its_way(client, outbox):
    UserFactory(phone_number_for_2fa=NUMBER)
    start_login(attacker())

    response = client.post(
        "/api/verify/request", {"number": NUMBER}, content_type="application/json"
    )

    assert response.json()["status"] == "0"
    assert len(outbox) == 1
    token = response.json()["request_id"]
    check = client.post(
        "/api/verify/check",
        {"request_id": token, "code": last_code(outbox)},
        content_type="application/json",
    )
    assert check.json()["status"] == "0"


def test_a_start_waits_for_the_one_under_way_and_adopts_it(concurrent_database):
    """The claim that makes the second of two racing starts wait for the first."""
    live, claim, _stale = live_request_claim(NUMBER, decoy=False)
    assert live is None and claim
    started = LiveRequest(
        request_id="req-1", step="s", decoy=False, started_at=time.time(), sent_at=time.time()
    )
    threading.Timer(0.2, live_request_save, args=(NUMBER, started)).start()

    adopted, second_claim, _stale = live_request_claim(NUMBER, decoy=False)

    assert adopted == started
    assert second_claim == ""


def test_a_failed_start_lets_the_next_one_try(concurrent_database):
    _live, claim, _stale = live_request_claim(NUMBER, decoy=False)
    threading.Timer(
        0.2, live_request_release, args=(NUMBER,), kwargs={"decoy": False, "token": claim}
    ).start()

    live, second_claim, _stale = live_request_claim(NUMBER, decoy=False)

    assert live is None and second_claim and second_claim != claim


def test_a_start_stuck_upstream_is_answered_as_unavailable(db, settings):
    """The first start never came back: the second gives up before the claim lapses."""
    settings.VONAGE_TIMEOUT = 0
    live_request_claim(NUMBER, decoy=False)
    with pytest.raises(StartUnderWay):
        live_request_claim(NUMBER, decoy=False)


def upstream_outbox():
    import verification

    return verification.outbox
