"""Django's admin login is no side door: the site's login, its limits and its second factor.

The admin's own login form checked a password and logged the person in: no
password limits, no code for staff who chose the second factor, and the
session it made opened every page of the site. Now its URL only sends the
visitor to the site's password login with `next` pointing back into the
admin; a password posted to it is never checked.
"""

from __future__ import annotations

import pytest

from ..conftest import NUMBER, last_code, messages_of
from ..factories import UserFactory
from .conftest import attacker

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ADMIN_LOGIN = "/admin/login/"
PASSWORD_LOGIN = "/login/password/"


@pytest.fixture
def boss():
    """A superuser who chose password + code."""
    return UserFactory(
        username="boss",
        phone_number_for_2fa=NUMBER,
        is_2fa_enabled=True,
        is_staff=True,
        is_superuser=True,
    )


def opens(browser, path: str) -> bool:
    """Return whether `path` answers with its page rather than a way to the login."""
    return browser.get(path).status_code == 200


def assert_locked_out(browser):
    assert not opens(browser, "/admin/")
    assert not opens(browser, "/admin/accounts/user/")
    assert not opens(browser, "/account/")
    assert "_auth_user_id" not in browser.session


def landing(browser, path: str):
    """Follow a visit to `path` through its redirects; return the last URL and its page."""
    url = path
    for _ in range(5):
        response = browser.get(url)
        if response.status_code != 302:
            return url, response
        url = response["Location"]
    raise AssertionError(f"{path} redirects without end")


# The second factor --------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_password_alone_at_the_admin_login_opens_nothing_for_a_second_factor_user(
    boss, logins, outbox, method
):
    browser = attacker()
    credentials = {"username": "boss", "password": PASSWORD, "next": "/admin/"}

    response = getattr(browser, method)(ADMIN_LOGIN, credentials)

    assert response.status_code == 302
    assert response["Location"].startswith(PASSWORD_LOGIN)
    assert logins == []
    assert outbox == []
    assert_locked_out(browser)


def test_posts_to_the_admin_login_authenticate_nobody(logins):
    staff = UserFactory(username="clerk", is_staff=True, phone_number_for_2fa=None)
    browser = attacker()

    for password in [f"guess {n}" for n in range(12)] + [PASSWORD]:
        response = browser.post(ADMIN_LOGIN, {"username": staff.username, "password": password})
        assert response.status_code == 302
        assert response["Location"].startswith(PASSWORD_LOGIN)

    assert logins == []
    assert_locked_out(browser)


# The password limits ------------------------------------------------------------


def test_the_sixth_wrong_password_through_the_admin_entry_is_refused(boss, logins, settings):
    assert settings.LOGIN_RATE_PASSWORD_PER_USERNAME == "5/15m"
    # Where a logged-out visitor of the admin is sent to log in.
    entry, _ = landing(attacker(), "/admin/")
    assert entry == f"{PASSWORD_LOGIN}?next=/admin/"

    # Each guess from a new address: the per-username limit is the one that holds.
    answers = [
        attacker().post(entry, {"username": "boss", "password": f"guess {n}"}).status_code
        for n in range(6)
    ]

    assert answers == [200] * 5 + [429]
    # Past the limit even the right password is refused, at either door.
    late = attacker()
    assert late.post(entry, {"username": "boss", "password": PASSWORD}).status_code == 429
    late.post(ADMIN_LOGIN, {"username": "boss", "password": PASSWORD})
    assert logins == []
    assert_locked_out(late)


# The way back into the admin ----------------------------------------------------


def test_a_logged_out_visitor_of_the_admin_lands_on_the_site_login_with_next():
    browser = attacker()

    entry, response = landing(browser, "/admin/accounts/user/?is_staff__exact=1")

    assert entry == f"{PASSWORD_LOGIN}?next=/admin/accounts/user/%3Fis_staff__exact%3D1"
    page = response.content.decode()
    assert "Log in with a password" in page
    # The form posts back with the same `next`.
    assert 'action="/login/password/?next=/admin/accounts/user/%3Fis_staff__exact%3D1"' in page


def test_second_factor_staff_reach_the_admin_after_password_and_code(boss, logins, outbox):
    browser = attacker()
    entry, _ = landing(browser, "/admin/")

    after_password = browser.post(entry, {"username": "boss", "password": PASSWORD})

    assert after_password["Location"] == "/verify/"
    # Between the password and the code, nothing opens.
    assert_locked_out(browser)
    after_code = browser.post("/verify/", {"code": last_code(outbox)})
    assert after_code["Location"] == "/admin/"
    assert logins == [boss.pk]
    assert opens(browser, "/admin/")
    assert opens(browser, "/admin/accounts/user/")


def test_staff_without_second_factor_reach_the_admin_after_the_password(logins, outbox):
    clerk = UserFactory(username="clerk", is_staff=True, is_superuser=True)
    browser = attacker()
    entry, _ = landing(browser, "/admin/accounts/user/")

    response = browser.post(entry, {"username": "clerk", "password": PASSWORD})

    assert response["Location"] == "/admin/accounts/user/"
    assert logins == [clerk.pk]
    assert outbox == []
    assert opens(browser, "/admin/accounts/user/")


def test_a_person_who_is_not_staff_is_told_so_and_may_log_in_as_someone_else(logins):
    person = UserFactory(username="person", phone_number_for_2fa=None)
    browser = attacker()
    browser.force_login(person)

    entry, response = landing(browser, "/admin/")

    assert entry == f"{PASSWORD_LOGIN}?next=/admin/"
    assert any("cannot open the admin" in text for text in messages_of(response))
    assert not opens(browser, "/admin/")


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/admin/"])
def test_the_admin_login_sends_nobody_off_site(next_url):
    response = attacker().get(ADMIN_LOGIN, {"next": next_url})

    assert response["Location"] == f"{PASSWORD_LOGIN}?next=/admin/"
