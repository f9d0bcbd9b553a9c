"""Using one code twice: replayed afterwards, or posted many times at once.

A code that logs in must log in once. The attacker who saw a code go by (a
shoulder, a shared screen, a proxy log) replays it after its owner used it;
one who can post fast fires the same right code from many connections at
the same moment, hoping two of them pass the check before either removes it.
"""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client

from flows import counters, limits
from verification.backends import decoy, locmem
from verification.exceptions import IncorrectCode, VerificationError, VerificationExpired
from verificationlog.models import Outcome, VerificationLog

from ..conftest import NUMBER, last_code, start_login
from ..factories import UserFactory
from .conftest import (
    attacker,
    fresh_ip,
    logged_in_sessions,
    run_together,
    session_cookie,
    session_pending,
)

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
    # The stored session, not a cache's copy of it: with cached_db, a request
    # that lost the race may have put the session it read back into the cache
    # after the winner's login deleted it (Django's own load does that).
    assert session_pending(cookie) is None


# Wrong codes posted together ----------------------------------------------------

WRONG_TOGETHER = 5
ROUNDS = 4


def wrong_codes_counted(number: str) -> int:
    """Return the wrong codes counted against `number` in this window (the lockout's counter)."""
    rate = counters.parse_rate(django_settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER)
    return counters.read(counters.Counter(limits.WRONG_CODES, number, rate))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend_class", [locmem.VerificationBackend, decoy.VerificationBackend])
@pytest.mark.parametrize("cache_alias", ["default", "locmem"], ids=["site-cache", "locmem"])
def test_wrong_codes_checked_together_take_exactly_three_attempts(
    concurrent_database, settings, backend_class, cache_alias
):
    """Five wrong codes at once on one request: three are counted, the request ends, no crash.

    Each check builds its own backend, as each request of the site does, on
    the site's cache (the database cache here, Redis in the services run) and
    on LocMem. The stand-in backend of signup-off decoys runs the same rules.
    The worst interleaving is forced: every check has found the request
    alive before any goes on.
    """
    settings.CACHES = {
        **settings.CACHES,
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    for round_number in range(ROUNDS):
        request_id = backend_class(cache_alias=cache_alias).start(f"+1415555{round_number:04d}")
        all_loaded = threading.Barrier(WRONG_TOGETHER)

        def check(_index, request_id=request_id, all_loaded=all_loaded):
            backend = backend_class(cache_alias=cache_alias)
            load = backend._load

            def load_then_wait_for_the_others(request_id):
                record = load(request_id)
                all_loaded.wait(timeout=30)
                return record

            backend._load = load_then_wait_for_the_others
            try:
                backend.check(request_id, "0000000")
            except IncorrectCode as exc:
                return f"wrong, {exc.attempts_left} left"
            except VerificationError as exc:
                return type(exc).__name__
            return "logged in"

        answers, errors = run_together(WRONG_TOGETHER, check)

        assert errors == []
        assert sorted(answers) == sorted(
            [
                "wrong, 2 left",
                "wrong, 1 left",
                "TooManyAttempts",
                *["VerificationExpired"] * (WRONG_TOGETHER - 3),
            ]
        )
        with pytest.raises(VerificationExpired):
            backend_class(cache_alias=cache_alias).check(request_id, "0000000")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("registered", [True, False], ids=["registered", "decoy"])
def test_wrong_codes_posted_together_to_the_api_count_three_and_never_answer_500(
    concurrent_database, settings, outbox, registered
):
    """The attack run's finding: five parallel wrong checks answered HTTP 500 now and then.

    With signup off, an unknown number is served by the stand-in backend: its
    answers must be the registered number's, or the 500s would tell them apart.
    """
    settings.PASSWORDLESS_SIGNUP = False
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "100/h"
    settings.VERIFY_RATE_START_PER_NUMBER = "100/h"
    settings.VERIFY_RATE_START_PER_IP = "100/h"
    for round_number in range(ROUNDS):
        number = f"+1415555{round_number:04d}"
        if registered:
            UserFactory(phone_number_for_2fa=number)
        response = attacker().post(
            "/api/verify/request", {"number": number}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        token = response.json()["request_id"]

        def check(_index, token=token):
            response = Client(REMOTE_ADDR=fresh_ip()).post(
                "/api/verify/check",
                {"request_id": token, "code": "0000000"[: settings.VERIFY_CODE_LENGTH]},
                content_type="application/json",
            )
            return response.status_code, response.json()["status"]

        answers, errors = run_together(WRONG_TOGETHER, check)

        assert errors == []
        # Two "wrong code", then "too many", then the request is over.
        assert sorted(answers) == sorted(
            [(400, "16"), (400, "16"), (400, "17"), *[(400, "6")] * (WRONG_TOGETHER - 3)]
        )
        # Exactly three wrong codes counted against the number: the two
        # checks that came after the end were not guesses.
        assert wrong_codes_counted(number) == 3
