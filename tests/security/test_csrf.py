"""Cross-site request forgery: another site makes the victim's browser post a form here.

The victim is logged in and waiting on a code; the attacker's page posts to
each state-changing URL with the victim's cookies but without the token only
this site's pages carry. Every such post is refused with 403, and nothing
happens: no code sent, no setting changed, no logout. A GET never changes state.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import User

from ..conftest import NUMBER, last_code, pending, start_login
from ..factories import UserFactory
from .conftest import api_endpoints, attacker

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"

FORMS = {
    "/login/": {"number": "+14155550123"},
    "/verify/": {"code": "CODE"},
    "/verify/resend/": {},
    "/verify/call/": {},
    "/verify/cancel/": {},
    "/logout/": {},
    "/login/password/": {"username": "victim", "password": PASSWORD},
    "/account/phone/": {"number": "+14155550123"},
    "/account/phone/remove/": {},
    "/account/2fa/enable/": {},
    "/account/2fa/disable/": {},
    "/account/password/": {
        "old_password": PASSWORD,
        "new_password1": "the attacker's passphrase",
        "new_password2": "the attacker's passphrase",
    },
}
FORGERIES = {
    "no token": {},
    "made-up token": {"csrfmiddlewaretoken": "A" * 64},
}


@pytest.fixture
def victim(outbox):
    """A logged-in person with a password and a phone, waiting on a login code."""
    user = UserFactory(username="victim", phone_number_for_2fa=NUMBER)
    browser = attacker()
    browser.force_login(user)
    start_login(browser)
    return user, browser


def snapshot(user, browser, outbox):
    user = User.objects.get(pk=user.pk)
    return {
        "sent": len(outbox),
        "phone": str(user.phone_number_for_2fa),
        "2fa": user.is_2fa_enabled,
        "password": user.password,
        "logged_in": browser.session.get(SESSION_KEY),
        "pending": pending(browser),
    }


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("path", FORMS)
def test_every_state_changing_form_refuses_a_post_without_a_token(
    settings, outbox, victim, path, forgery
):
    user, browser = victim
    before = snapshot(user, browser, outbox)
    forger = attacker(ip=browser.defaults["REMOTE_ADDR"], enforce_csrf_checks=True)
    forger.cookies = browser.cookies
    data = {
        key: last_code(outbox) if value == "CODE" else value for key, value in FORMS[path].items()
    }

    response = forger.post(path, {**data, **FORGERIES[forgery]})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert snapshot(user, browser, outbox) == before


@pytest.mark.parametrize("path", FORMS)
def test_a_forged_post_from_another_origin_is_refused_even_with_a_token(outbox, victim, path):
    """Tokens read from one page do not let another origin post (Origin checked over HTTPS)."""
    user, browser = victim
    page = browser.get("/account/")
    token = page.context["csrf_token"]
    before = snapshot(user, browser, outbox)
    forger = attacker(ip=browser.defaults["REMOTE_ADDR"], enforce_csrf_checks=True)
    forger.cookies = browser.cookies
    data = {
        key: last_code(outbox) if value == "CODE" else value for key, value in FORMS[path].items()
    }

    response = forger.post(
        path,
        {**data, "csrfmiddlewaretoken": str(token)},
        HTTP_ORIGIN="https://evil.example",
        secure=True,
    )

    assert response.status_code == 403
    assert snapshot(user, browser, outbox) == before


def test_get_logout_does_not_log_out(outbox, victim):
    user, browser = victim
    response = browser.get("/logout/")
    assert response.status_code == 405
    assert browser.session.get(SESSION_KEY) == str(user.pk)
    assert browser.get("/account/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/verify/resend/",
        "/verify/call/",
        "/verify/cancel/",
        "/account/phone/remove/",
        "/account/2fa/enable/",
        "/account/2fa/disable/",
    ],
)
def test_actions_do_nothing_on_get(outbox, victim, path):
    """An <img src> on another site makes a GET: it must not act."""
    user, browser = victim
    before = snapshot(user, browser, outbox)
    response = browser.get(path)
    assert response.status_code == 405
    assert snapshot(user, browser, outbox) == before


def test_the_json_api_is_the_only_exemption(outbox):
    """Without a browser session to ride, the API needs no token; it must not touch sessions."""
    endpoints = api_endpoints()
    assert set(endpoints) == {"request", "check", "cancel", "next"}
    forger = attacker(enforce_csrf_checks=True)
    for path in endpoints.values():
        response = forger.post(path, {}, content_type="application/json")
        assert response.status_code != 403, path
        assert response["Content-Type"].startswith("application/json"), path
        assert "sessionid" not in response.cookies, path
    assert outbox == []
