"""A code the provider accepted is never lost to a failure of the site's own storage.

Once the provider says a code is right, asking it again would get "already
verified": the person would have to start over and pay for a new code. So the
fact is kept (in the session, and in the cache for that session alone) until
what the code was for is done, and a retry after the failure finishes it
without asking the provider again, once.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection

from accounts.models import User
from tests.conftest import NUMBER, OTHER_NUMBER, last_code, pending, start_login
from tests.factories import UserFactory

from .conftest import attacker, logged_in_sessions

pytestmark = pytest.mark.django_db


def fails_once(matches):
    """Return an execute_wrapper (Django's hook) failing the first statement `matches(sql)`
    accepts, as a restarting PostgreSQL fails it, and the list of the statements it failed."""
    failures = []

    def wrapper(execute, sql, params, many, context):
        if not failures and matches(sql):
            failures.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    return wrapper, failures


def _select(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT")


def user_lookup_by_phone(sql: str) -> bool:
    return _select(sql) and "phone_number_for_2fa" in sql and "WHERE" in sql.upper()


def session_write(sql: str) -> bool:
    return "django_session" in sql and not _select(sql)


def session_update(sql: str) -> bool:
    return "django_session" in sql and sql.lstrip().upper().startswith("UPDATE")


def last_login_write(sql: str) -> bool:
    return sql.lstrip().upper().startswith("UPDATE") and "last_login" in sql


@pytest.fixture
def database_fails_once():
    """Return a context in which the first look-up of a user by phone number fails."""
    return lambda: connection.execute_wrapper(fails_once(user_lookup_by_phone)[0])


def browser():
    # The visitor sees whatever page the failure gives; the test sees it too.
    return attacker(raise_request_exception=False)


def test_a_login_whose_database_write_failed_finishes_on_retry_without_a_new_check(
    upstream, database_fails_once, logins
):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    person = browser()
    start_login(person)
    code = last_code(upstream_outbox())

    with database_fails_once():
        failed = person.post("/verify/", {"code": code})
    retried = person.post("/verify/", {"code": code})

    assert failed.status_code >= 500
    assert retried["Location"] == "/"
    assert logins == [user.pk]
    assert upstream.count("check") == 1
    assert upstream.count("start") == 1
    assert len(logged_in_sessions(user.pk)) == 1
    assert pending(person) is None


def test_a_new_account_whose_login_failed_is_made_once(upstream, database_fails_once, logins):
    person = browser()
    start_login(person, OTHER_NUMBER)
    code = last_code(upstream_outbox(), OTHER_NUMBER)

    with database_fails_once():
        person.post("/verify/", {"code": code})
    retried = person.post("/verify/", {"code": code})

    assert retried["Location"] == "/"
    assert User.objects.filter(phone_number_for_2fa=OTHER_NUMBER).count() == 1
    assert upstream.count("check") == 1


def test_the_accepted_code_does_not_let_another_session_in(upstream, database_fails_once, logins):
    """A browser that adopted the same request cannot finish on the code another typed."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    person, adopter = browser(), browser()
    start_login(person)
    start_login(adopter)
    code = last_code(upstream_outbox())

    with database_fails_once():
        person.post("/verify/", {"code": code})
    response = adopter.post("/verify/", {"code": "000000" if code != "000000" else "111111"})

    assert response["Location"] != "/"
    assert logins == []
    # The person who typed the code still gets in.
    assert person.post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]


def test_a_finished_login_is_not_finished_again(upstream, logins):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    person = browser()
    start_login(person)
    code = last_code(upstream_outbox())

    assert person.post("/verify/", {"code": code})["Location"] == "/"
    again = person.post("/verify/", {"code": code})

    assert again["Location"] == "/login/"
    assert logins == [user.pk]


def upstream_outbox():
    import verification

    return verification.outbox


def test_a_start_whose_session_could_not_be_saved_is_not_orphaned(upstream, logins):
    """Vonage sent the code, then the session write failed: the retry gets that code's
    request back (nothing sent again), and the code that arrived logs the person in."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    session_write_fails, failures = fails_once(session_write)

    person = browser()
    with connection.execute_wrapper(session_write_fails):
        failed = start_login(person)
    retried = start_login(person)

    assert failures
    assert failed.status_code >= 500
    assert retried["Location"] == "/verify/"
    assert upstream.count("start") == 1
    assert person.post("/verify/", {"code": last_code(upstream_outbox())})["Location"] == "/"
    assert logins == [user.pk]


def test_a_login_whose_last_login_write_failed_finishes_on_retry(upstream, logins):
    """The failure comes after login() moved the session to a new key: the retry,
    with the browser's old cookie, still finds the session and the verified code."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    last_login_write_fails, failures = fails_once(last_login_write)

    person = browser()
    start_login(person)
    code = last_code(upstream_outbox())
    with connection.execute_wrapper(last_login_write_fails):
        failed = person.post("/verify/", {"code": code})
    retried = person.post("/verify/", {"code": code})

    assert failures
    assert failed.status_code == 503
    assert retried["Location"] == "/"
    assert logins == [user.pk]
    assert upstream.count("check") == 1
    assert len(logged_in_sessions(user.pk)) == 1


def test_a_code_accepted_before_the_cache_was_lost_finishes_on_retry(upstream, logins):
    """The provider accepted the code, the login failed (503: no session saved), and the
    cache came back empty (a Redis restart): the log's row, naming who typed the code,
    lets the retry in."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    person = browser()
    start_login(person)
    code = last_code(upstream_outbox())
    wrapper, failures = fails_once(last_login_write)

    with connection.execute_wrapper(wrapper):
        failed = person.post("/verify/", {"code": code})
    cache.clear()
    retried = person.post("/verify/", {"code": code})

    assert failures
    assert failed.status_code == 503
    assert retried["Location"] == "/"
    assert logins == [user.pk]
    assert len(logged_in_sessions(user.pk)) == 1


def test_an_accepted_code_in_the_log_opens_nothing_for_another_session(upstream, logins):
    UserFactory(phone_number_for_2fa=NUMBER)
    person, adopter = browser(), browser()
    start_login(person)
    start_login(adopter)
    code = last_code(upstream_outbox())
    wrapper, _failures = fails_once(last_login_write)

    with connection.execute_wrapper(wrapper):
        person.post("/verify/", {"code": code})
    cache.clear()
    response = adopter.post("/verify/", {"code": code})

    assert response["Location"] == "/login/"
    assert logins == []


def test_a_session_the_database_could_not_save_is_a_503_not_a_400(upstream):
    UserFactory(phone_number_for_2fa=NUMBER)
    person = browser()
    start_login(person)
    session_update_fails, failures = fails_once(session_update)

    with connection.execute_wrapper(session_update_fails):
        response = person.post("/verify/", {"code": "000000"})

    assert failures
    assert response.status_code == 503


def test_a_login_cut_short_keeps_the_csrf_cookie(upstream, logins):
    """login() rotated the CSRF token before the failure: the 503 must not send the new
    one, or the reload of the same form would be refused as expired."""
    UserFactory(phone_number_for_2fa=NUMBER)
    last_login_write_fails, failures = fails_once(last_login_write)

    person = attacker(raise_request_exception=False, enforce_csrf_checks=True)
    page = person.get("/login/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None
    form = {"csrfmiddlewaretoken": person.cookies["csrftoken"].value}
    person.post("/login/", {"number": NUMBER, **form})
    code = last_code(upstream_outbox())
    with connection.execute_wrapper(last_login_write_fails):
        failed = person.post("/verify/", {"code": code, **form})
    reloaded = person.post("/verify/", {"code": code, **form})

    assert token is not None
    assert failures
    assert failed.status_code == 503
    assert "csrftoken" not in failed.cookies
    assert reloaded["Location"] == "/"


def test_a_start_the_site_lost_track_of_is_found_in_the_log(
    vonage_backend_settings, vonage_emulator
):
    """Vonage sent the code, the session could not be saved, and the cache came back
    empty: Vonage refuses the retry's start as concurrent, naming its request, and the
    log says this site started it for this person, so the code they got still works."""
    user = UserFactory(phone_number_for_2fa=NUMBER)
    session_write_fails, failures = fails_once(session_write)

    person = browser()
    with connection.execute_wrapper(session_write_fails):
        failed = start_login(person)
    cache.clear()
    retried = start_login(person)

    assert failures
    assert failed.status_code == 503
    assert retried["Location"] == "/verify/"
    assert len(vonage_emulator.messages) == 1
    response = person.post("/verify/", {"code": vonage_emulator.last_code(NUMBER)})
    assert response["Location"] == "/"
    assert User.objects.get(pk=user.pk).last_login is not None


@pytest.mark.parametrize("backend", ["vonage_backend_settings", "vonage_legacy_backend_settings"])
def test_a_code_vonage_accepted_stays_right_when_the_cache_fails_after(
    request, vonage_emulator, settings, backend
):
    """The backend's own bookkeeping after Vonage's yes (its wrong-code count) cannot turn
    that yes into an error: the retry would hear "already verified"."""
    from tests.test_infrastructure_faults import closed_port
    from verification import get_backend

    request.getfixturevalue(backend)
    provider = get_backend()
    request_id = provider.start(NUMBER)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }

    result = provider.check(request_id, vonage_emulator.last_code(NUMBER))

    assert result.request_id == request_id


def test_a_start_whose_record_the_cache_refused_is_found_on_retry(
    vonage_backend_settings, vonage_emulator, monkeypatch
):
    """Vonage sent the code, then the cache failed (503) and came back empty: the log's
    row, written before the cache, lets the retry take the request Vonage names."""
    from redis.exceptions import ConnectionError as RedisDown

    from flows import process

    UserFactory(phone_number_for_2fa=NUMBER)
    saves = []
    real_save = process.live_request_save

    def cache_down_once(*args, **kwargs):
        if not saves:
            saves.append(args)
            raise RedisDown("Connection refused")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(process, "live_request_save", cache_down_once)
    person = browser()
    failed = start_login(person)
    cache.clear()
    retried = start_login(person)

    assert failed.status_code == 503
    assert retried["Location"] == "/verify/"
    assert len(vonage_emulator.messages) == 1
    response = person.post("/verify/", {"code": vonage_emulator.last_code(NUMBER)})
    assert response["Location"] == "/"


def test_a_login_done_as_the_cache_fails_is_still_a_login(upstream, logins, monkeypatch):
    """The login happened; only tidying the number's record in the cache failed: the
    person is logged in and gets the new session's cookie, not the 503 page."""
    from redis.exceptions import ConnectionError as RedisDown

    from flows import process

    user = UserFactory(phone_number_for_2fa=NUMBER)

    def cache_down(*args, **kwargs):
        raise RedisDown("Connection refused")

    person = browser()
    start_login(person)
    monkeypatch.setattr(process, "live_request_end", cache_down)
    response = person.post("/verify/", {"code": last_code(upstream_outbox())})

    assert response["Location"] == "/"
    assert logins == [user.pk]
    assert person.get("/account/").status_code == 200
