"""Session tricks: a code used from another browser, a planted session, a stolen cookie.

The code is bound to the browser session that asked for it; the provider's
request id, which would let anyone check codes against the request, stays on
the server. Logging in makes a new session key and CSRF token, so a session
an attacker planted before the login is worth nothing after it, and logging
out deletes the session on the server, so a copied cookie dies with it.
"""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.models import Session

from flows.services import PENDING_SESSION_KEY

from ..conftest import NUMBER, OTHER_NUMBER, last_code, messages_of, pending, start_login
from .conftest import attacker, logged_in_sessions, run_settings, session_cookie, wrong_code

pytestmark = pytest.mark.django_db

CSRF_FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def form_token(response) -> str:
    return CSRF_FORM_TOKEN.search(response.content.decode()).group(1)


# Session binding --------------------------------------------------------------


def test_a_code_started_in_one_session_is_refused_in_another(outbox, upstream, user, logins):
    victim = attacker()
    start_login(victim)
    code = last_code(outbox)

    # A browser with no verification of its own.
    bystander = attacker()
    response = bystander.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"

    # A browser that asked for a code to the same number adopts the live
    # request: nothing new is sent, and only the code on its way to the
    # phone (which this browser does not have) will do.
    rival = attacker()
    response = start_login(rival)
    assert response["Location"] == "/verify/"
    assert pending(rival)["request_id"] == pending(victim)["request_id"]

    # A browser waiting on a code of its own, to another number.
    other = attacker()
    start_login(other, OTHER_NUMBER)
    response = other.post("/verify/", {"code": code}, follow=True)
    assert "That code is not right" in " ".join(messages_of(response))

    assert upstream.count("check") == 1  # only the last: its own request, the wrong code
    assert logins == []
    assert [message.number for message in outbox] == [NUMBER, OTHER_NUMBER]
    # The code still works where it was asked for.
    assert victim.post("/verify/", {"code": code})["Location"] == "/"
    assert logins == [user.pk]


def test_the_upstream_request_id_never_reaches_the_browser(
    settings, outbox, upstream, user, no_server_errors, time_machine
):
    time_machine.move_to(time.time())
    cooldown = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30)
    browser = attacker()
    browser.get("/login/?next=/account/")
    browser.post("/login/?next=/account/", {"number": NUMBER}, follow=True)
    browser.post("/verify/", {"code": wrong_code(last_code(outbox))}, follow=True)
    time_machine.shift(cooldown + 1)
    browser.post("/verify/resend/", follow=True)
    time_machine.shift(cooldown + 1)
    browser.post("/verify/call/", follow=True)
    response = browser.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert response.redirect_chain[-1][0] == "/account/"
    browser.get("/account/")
    browser.post("/logout/", follow=True)
    # A second verification, cancelled, in a new session.
    start_login(browser, OTHER_NUMBER)
    browser.post("/verify/cancel/", follow=True)

    assert len(upstream.issued) >= 3  # the login, the resend, the one cancelled
    for response in no_server_errors:
        request = response.request
        url = f"{request['PATH_INFO']}?{request.get('QUERY_STRING', '')}"
        exposed = "\n".join(
            [
                url,
                response.content.decode(errors="replace"),
                *(f"{name}: {value}" for name, value in response.items()),
                response.cookies.output(),
            ]
        )
        for request_id in upstream.issued:
            assert request_id not in exposed, f"request id exposed by {url}"


# Session fixation -------------------------------------------------------------


def test_the_session_key_and_csrf_token_change_at_login(outbox, user):
    browser = attacker(enforce_csrf_checks=True)
    login_page = browser.get("/login/")
    token_before = form_token(login_page)
    csrf_cookie_before = browser.cookies["csrftoken"].value
    browser.post("/login/", {"number": NUMBER, "csrfmiddlewaretoken": token_before})
    session_before = session_cookie(browser)
    verify_page = browser.get("/verify/")
    response = browser.post(
        "/verify/", {"code": last_code(outbox), "csrfmiddlewaretoken": form_token(verify_page)}
    )
    assert response["Location"] == "/"

    assert session_cookie(browser) != session_before
    assert browser.cookies["csrftoken"].value != csrf_cookie_before
    assert PENDING_SESSION_KEY not in browser.session
    # A form forged with the token known before the login no longer passes.
    forged = browser.post("/account/2fa/enable/", {"csrfmiddlewaretoken": token_before})
    assert forged.status_code == 403


def test_a_session_planted_before_login_is_anonymous_after_it(settings, outbox, user, logins):
    # The attacker gets a session of their own, then plants its cookie in the
    # victim's browser (a shared computer, a subdomain that sets cookies).
    fixer = attacker()
    start_login(fixer, OTHER_NUMBER)
    planted = session_cookie(fixer)
    victim = attacker()
    victim.cookies[settings.SESSION_COOKIE_NAME] = planted

    start_login(victim)
    assert session_cookie(victim) == planted  # the victim really used it
    victim.post("/verify/", {"code": last_code(outbox)})
    assert logins == [user.pk]

    assert not Session.objects.filter(session_key=planted).exists()
    response = fixer.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert logged_in_sessions(user.pk) == [session_cookie(victim)]


def test_logout_kills_the_session_on_the_server(settings, outbox, user):
    browser = attacker()
    start_login(browser)
    browser.post("/verify/", {"code": last_code(outbox)})
    key = session_cookie(browser)
    assert browser.get("/account/").status_code == 200

    thief = attacker()
    thief.cookies[settings.SESSION_COOKIE_NAME] = key
    assert thief.get("/account/").status_code == 200  # a copied cookie works while logged in

    response = browser.post("/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert logged_in_sessions() == []
    response = thief.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_sessions_live_on_the_server_not_in_signed_cookies(settings, outbox, user):
    assert settings.SESSION_ENGINE != "django.contrib.sessions.backends.signed_cookies"
    browser = attacker()
    start_login(browser)
    # The cookie is an opaque key; the pending verification is stored server side.
    key = session_cookie(browser)
    assert re.fullmatch(r"[a-z0-9]{32}", key)
    assert Session.objects.get(session_key=key).get_decoded()[PENDING_SESSION_KEY]
    cookies = browser.cookies.output()
    assert NUMBER not in cookies and "%2B1415" not in cookies

    refused = run_settings({"SESSION_ENGINE": "signed_cookies"}, ["SESSION_ENGINE"])
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "SESSION_ENGINE must be one of" in refused.stderr
