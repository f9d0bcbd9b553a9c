"""Account takeover: a stolen password, or a stolen session, against the second factor.

With the password of someone who chose password + code, the attacker gets
half a login: nothing behind login_required may open. With a stolen logged-in
session, the attacker wants to keep the account: move it to their phone,
remove the phone, or turn the second factor off. Each needs a fresh code sent
to the current phone, which the attacker does not have.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import User

from ..conftest import NUMBER, last_code, start_login
from ..factories import UserFactory
from .conftest import attacker, logged_in_sessions, wrong_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ATTACKERS_PHONE = "+14155550166"
PROTECTED_PAGES = ["/account/", "/account/phone/", "/account/password/"]
PROTECTED_ACTIONS = [
    ("/account/phone/", {"number": ATTACKERS_PHONE}),
    ("/account/phone/remove/", {}),
    ("/account/2fa/enable/", {}),
    ("/account/2fa/disable/", {}),
    (
        "/account/password/",
        {"new_password1": "pwned pwned pwned", "new_password2": "pwned pwned pwned"},
    ),
]


@pytest.fixture
def victim(db):
    return UserFactory(username="victim", phone_number_for_2fa=NUMBER, is_2fa_enabled=True)


def state(user) -> tuple:
    user = User.objects.get(pk=user.pk)
    return (str(user.phone_number_for_2fa), user.is_2fa_enabled, user.password)


def test_the_password_alone_opens_nothing(outbox, victim, logins):
    before = state(victim)
    browser = attacker()
    response = browser.post("/login/password/", {"username": "victim", "password": PASSWORD})
    assert response["Location"] == "/verify/"
    assert [message.number for message in outbox] == [NUMBER]  # the code went to the victim

    for path in PROTECTED_PAGES:
        response = browser.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path
    for path, data in PROTECTED_ACTIONS:
        response = browser.post(path, data)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path
    assert "Log out" not in browser.get("/").content.decode()
    # Wrong codes, then the phone login with the victim's number: still nothing.
    for _ in range(3):
        browser.post("/verify/", {"code": wrong_code(last_code(outbox))})
    start_login(browser)
    assert browser.session.get(SESSION_KEY) is None
    assert logins == []
    assert logged_in_sessions() == []
    assert state(victim) == before


def test_the_phone_alone_does_not_log_in_a_second_factor_user(outbox, victim, logins):
    """A SIM-swapped or shoulder-read code is one factor; the victim chose two."""
    browser = attacker()
    start_login(browser)
    response = browser.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert response.redirect_chain[-1][0] == "/login/password/"
    assert logins == []
    assert browser.session.get(SESSION_KEY) is None


@pytest.fixture
def stolen_session(victim):
    """An attacker's browser holding the victim's logged-in session (and no phone)."""
    thief = attacker()
    thief.force_login(victim)
    return thief


def test_a_stolen_session_cannot_move_the_account_to_another_phone(outbox, victim, stolen_session):
    before = state(victim)
    response = stolen_session.post("/account/phone/", {"number": ATTACKERS_PHONE})
    assert response["Location"] == "/verify/"
    # The first code goes to the victim's current phone, never to the new one.
    assert [message.number for message in outbox] == [NUMBER]
    for _ in range(3):
        stolen_session.post("/verify/", {"code": wrong_code(last_code(outbox))})
    assert state(victim) == before
    assert ATTACKERS_PHONE not in [message.number for message in outbox]


@pytest.mark.parametrize("path", ["/account/phone/remove/", "/account/2fa/disable/"])
def test_a_stolen_session_cannot_remove_the_phone_or_the_second_factor(
    outbox, victim, stolen_session, path
):
    before = state(victim)
    response = stolen_session.post(path)
    assert response["Location"] == "/verify/"
    assert [message.number for message in outbox] == [NUMBER]
    for _ in range(3):
        stolen_session.post("/verify/", {"code": wrong_code(last_code(outbox))})
    # Cancelling and asking again does not help either.
    stolen_session.post("/verify/cancel/")
    stolen_session.post(path)
    assert state(victim) == before


def test_a_code_for_one_change_does_not_allow_another(outbox, victim, stolen_session):
    """A step-up code is spent on the change it was asked for."""
    stolen_session.post("/account/2fa/disable/")
    stolen_session.post("/verify/", {"code": last_code(outbox)})  # say the victim typed it
    assert not User.objects.get(pk=victim.pk).is_2fa_enabled
    stolen_session.post("/account/2fa/enable/")
    phone_before = state(victim)[0]

    response = stolen_session.post("/account/phone/remove/")
    assert response["Location"] == "/verify/"
    stolen_session.post("/verify/", {"code": outbox[0].code})  # the spent code, replayed
    assert state(victim)[0] == phone_before


def test_a_step_up_started_for_one_account_does_not_apply_to_another(outbox, victim):
    """The code is bound to the account that asked; a session that changes hands changes nothing."""
    browser = attacker()
    browser.force_login(victim)
    browser.post("/account/2fa/disable/")
    code = last_code(outbox)
    other = UserFactory(username="other", phone_number_for_2fa="+14155550177", is_2fa_enabled=True)
    browser.force_login(other)
    browser.post("/verify/", {"code": code})
    assert User.objects.get(pk=other.pk).is_2fa_enabled
    assert User.objects.get(pk=victim.pk).is_2fa_enabled
