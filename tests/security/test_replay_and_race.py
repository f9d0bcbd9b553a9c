"""Using one code twice: replayed afterwards, or posted many times at once.

A code that logs in must log in once. The attacker who saw a code go by (a
shoulder, a shared screen, a proxy log) replays it after its owner used it;
one who can post fast fires the same right code from many connections at
the same moment, hoping two of them pass the check before either removes it.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from accounts.models import Outcome, VerificationLog

from ..conftest import NUMBER, last_code, pending, start_login
from ..factories import UserFactory
from .conftest import attacker, logged_in_sessions, session_cookie

PARALLEL = 10


@pytest.mark.django_db
def test_a_used_code_replayed_logs_nobody_in(settings, outbox, user, logins):
    victim = attacker()
    start_login(victim)
    code = last_code(outbox)
    session_before_login = session_cookie(victim)
    assert victim.post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]

    # The attacker replays it with the victim's pre-login session cookie, with a
    # session of their own, and the victim's own session replays it after logout.
    stale = attacker()
    stale.cookies[settings.SESSION_COOKIE_NAME] = session_before_login
    own = attacker()
    start_login(own, "+14155550199")
    for browser in (stale, own):
        response = browser.post("/verify/", {"code": code})
        assert response.status_code == 302
        assert response["Location"] in {"/login/", "/verify/"}
    victim.post("/logout/")
    assert victim.post("/verify/", {"code": code})["Location"] == "/login/"

    assert logins == [user.pk]
    assert VerificationLog.objects.filter(outcome=Outcome.SUCCEEDED).count() == 1
    assert logged_in_sessions() == []
    assert len([message for message in outbox if message.number == NUMBER]) == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_code_posted_ten_times_in_parallel_logs_in_once(
    concurrent_database, settings, outbox, logins
):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    victim = attacker()
    start_login(victim)
    code = last_code(outbox)
    cookie = session_cookie(victim)
    barrier = threading.Barrier(PARALLEL)
    answers, errors = [], []

    def submit():
        browser = Client(REMOTE_ADDR=victim.defaults["REMOTE_ADDR"])
        browser.cookies[settings.SESSION_COOKIE_NAME] = cookie
        try:
            barrier.wait(timeout=30)
            answers.append(browser.post("/verify/", {"code": code}))
        except Exception as exc:  # collected: a crash is a finding, reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(answers) == PARALLEL
    assert logins == [user.pk]
    assert len(logged_in_sessions(user.pk)) == 1
    assert VerificationLog.objects.filter(outcome=Outcome.SUCCEEDED).count() == 1
    # Whoever lost the race was sent back or refused, not let in.
    assert [response.get("Location") for response in answers].count("/") == 1
    assert pending(victim) is None
