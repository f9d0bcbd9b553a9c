import datetime
import logging
import re
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from accounts.models import User
from verification import get_backend
from verification.backends import locmem
from verification.exceptions import (
    ConcurrentVerification,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    VerificationExpired,
)

from .conftest import (
    NUMBER,
    OTHER_NUMBER,
    holds_code,
    last_code,
    messages_of,
    pending,
    start_login,
    stored_text,
)
from .factories import UserFactory

pytestmark = pytest.mark.django_db

MASKED = "+1 415 ••• ••00"
START = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
NO_PENDING = "Enter your phone number to get a code."


def wrong(code):
    return f"{(int(code[0]) + 1) % 10}{code[1:]}"


def session_cookie(client):
    return client.cookies["sessionid"].value


def is_logged_in(client):
    return SESSION_KEY in client.session


def follow(client, response):
    assert response.status_code == 302, response.status_code
    return client.get(response["Location"])


def begin(client, number=NUMBER, path="/login/"):
    """Start a login and open the code page, as a browser following the redirect does."""
    response = client.post(path, {"number": number})
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    return client.get("/verify/")


@pytest.fixture
def clock(time_machine):
    """A stopped clock that tests move by hand."""
    time_machine.move_to(START, tick=False)
    return time_machine


def a_minute_later(clock):
    """Let the person wait, as they must before asking for a new code or a call."""
    clock.shift(60)


def assert_never_cached(response):
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-cache", "no-store", "must-revalidate", "private", "max-age=0"} <= cache_control
    assert response.has_header("Expires")


# GET / --------------------------------------------------------------------


def test_home_anonymous_offers_a_login_link(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<a class="button" href="/login/">Log in</a>', html)
    assert "Hello" not in html
    assert 'action="/logout/"' not in html


def test_home_logged_in_says_hello_with_the_number_and_a_logout_button(client, user):
    client.force_login(user)
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Hello +1 415-555-0100</h1>" in html
    assert re.search(
        r'<form method="post" action="/logout/">\s*<input type="hidden" name="csrfmiddlewaretoken"'
        r'[^>]*>\s*<button type="submit" class="button">Log out</button>',
        html,
    )


# GET, POST /login/ ------------------------------------------------------------


def test_login_page_has_one_phone_field(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_number">Phone number</label>' in html
    field = re.search(r"<input [^>]*name=\"number\"[^>]*>", html)[0]
    assert 'type="tel"' in field
    assert 'autocomplete="tel"' in field
    assert 'name="csrfmiddlewaretoken"' in html
    assert re.search(r'<form method="post" action="/login/" novalidate data-send-once>', html)


def test_valid_number_starts_a_verification_and_goes_to_verify(client, outbox):
    response = start_login(client, "+1 (415) 555-0100")
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    stored = pending(client)
    assert stored["number"] == NUMBER
    assert stored["purpose"] == "login"
    assert stored["failed_attempts"] == 0
    assert stored["request_id"]
    assert [(message.number, message.channel) for message in outbox] == [(NUMBER, "sms")]
    page = follow(client, response)
    # Said once, by the page, not again in a message.
    assert f'we sent a code to <strong class="number">{MASKED}</strong>' in page.content.decode()
    assert messages_of(page) == []


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "Enter your phone number."),
        (
            "not a number",
            "Enter a valid phone number in international format, starting with + and the "
            "country code, e.g. +1 415 555 0100.",
        ),
    ],
)
def test_invalid_number_shows_the_form_again_with_the_error(client, outbox, typed, error):
    response = start_login(client, typed)
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["form"].errors["number"] == [error]
    assert re.search(rf'<div id="id_number_error">\s*<p class="error">{re.escape(error)}</p>', html)
    assert pending(client) is None
    assert outbox == []


def test_invalid_number_is_kept_in_the_field(client):
    response = start_login(client, "+1 415 555")
    assert re.search(
        r'<input [^>]*name="number"[^>]*value="\+1 415 555"', response.content.decode()
    )


def test_starting_again_in_the_same_session_keeps_the_code_on_its_way(client, outbox):
    start_login(client)
    first_request = pending(client)["request_id"]
    response = start_login(client)
    assert response["Location"] == "/verify/"
    assert pending(client)["request_id"] == first_request
    assert len(outbox) == 1
    page = follow(client, response)
    assert f"We already sent a code to {MASKED} a moment ago: type it here." in messages_of(page)


def test_another_number_replaces_the_pending_one_and_kills_its_code(client, outbox):
    start_login(client)
    old_request, old_code = pending(client)["request_id"], last_code(outbox)
    start_login(client, OTHER_NUMBER)
    assert pending(client)["number"] == OTHER_NUMBER
    with pytest.raises(VerificationExpired):
        get_backend().check(old_request, old_code)


def test_request_id_and_number_stay_on_the_server(client, outbox):
    """The session holds them; no page, URL, header or cookie carries them."""
    number = "+14155550142"  # unlike the examples printed on the pages
    answers = [client.get("/login/"), start_login(client, number)]
    stored = pending(client)
    assert stored["number"] == number
    code = last_code(outbox, number)
    answers += [client.get("/verify/"), client.post("/verify/", {"code": wrong(code)})]
    answers.append(client.get("/verify/"))
    secrets_ = [stored["request_id"], number, number[1:], "415-555-0142", "415 555 0142", "5550142"]
    for response in answers:
        exposed = response.content.decode() + repr(sorted(response.items()))
        for secret in secrets_:
            assert secret not in exposed
    for morsel in client.cookies.values():
        for secret in secrets_:
            assert secret not in morsel.value
    assert client.cookies["sessionid"]["httponly"]


def test_session_holds_the_pending_verification(client):
    start_login(client)
    stored = Session.objects.get(session_key=session_cookie(client)).get_decoded()
    assert stored["_pending_verification"]["number"] == NUMBER
    assert len(stored["_pending_verification"]["request_id"]) >= 16


def test_login_page_carries_a_safe_next_into_its_form(client):
    html = client.get("/login/?next=/admin/").content.decode()
    assert 'action="/login/?next=/admin/"' in html


def test_login_page_drops_an_unsafe_next(client):
    html = client.get("/login/?next=https://evil.example/").content.decode()
    assert 'action="/login/"' in html
    assert "evil.example" not in html


# GET, POST /verify/ ------------------------------------------------------------


def test_verify_without_pending_goes_back_to_login(client):
    response = client.get("/verify/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert messages_of(follow(client, response)) == [NO_PENDING]


def test_verify_post_without_pending_goes_back_to_login(client):
    response = client.post("/verify/", {"code": "123456"})
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)
    assert messages_of(follow(client, response)) == [NO_PENDING]


def test_verify_page_says_where_the_code_went(client):
    start_login(client)
    response = client.get("/verify/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'To log in: we sent a code to <strong class="number">{MASKED}</strong>.' in html
    field = re.search(r"<input [^>]*name=\"code\"[^>]*>", html)[0]
    assert 'inputmode="numeric"' in field
    assert 'autocomplete="one-time-code"' in field
    assert '<label for="id_code">Code</label>' in html
    # The forms that send a code are marked for static/js/send-once.js.
    for action in ("/verify/resend/", "/verify/call/"):
        assert f'<form method="post" action="{action}" data-send-once>' in html
    assert '<form method="post" action="/verify/cancel/">' in html


def test_right_code_logs_in_with_a_new_session_and_goes_home(client, outbox, user):
    start_login(client)
    client.get("/verify/")
    before_session, before_csrf = session_cookie(client), client.cookies["csrftoken"].value
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert is_logged_in(client)
    assert int(client.session[SESSION_KEY]) == user.pk
    # A new session key (the old one is gone from the database) and a new CSRF token.
    assert session_cookie(client) != before_session
    assert not Session.objects.filter(session_key=before_session).exists()
    assert client.cookies["csrftoken"].value != before_csrf
    assert pending(client) is None
    home = follow(client, response)
    assert messages_of(home) == ["You are logged in."]
    assert "Hello +1 415-555-0100" in home.content.decode()


def test_code_with_spaces_logs_in(client, outbox):
    start_login(client)
    code = last_code(outbox)
    response = client.post("/verify/", {"code": f" {code[:3]} {code[3:]} "})
    assert response["Location"] == "/"
    assert is_logged_in(client)


@pytest.mark.parametrize("next_url", ["/admin/", "/somewhere/?a=1&b=2"])
def test_right_code_honours_a_safe_next(client, outbox, next_url):
    response = client.post(f"/login/?{urlencode({'next': next_url})}", {"number": NUMBER})
    assert response["Location"] == "/verify/"
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == next_url


@pytest.mark.parametrize(
    "raw_next",
    [
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "http://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "https:/evil.example",
        "https:evil.example",
        "///evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "javascript%3Aalert(1)",
        "%252F%252Fevil.example",
        "%09//evil.example",
        "/%09/evil.example",
    ],
)
def test_unsafe_next_ends_on_site(client, outbox, raw_next):
    response = client.post(f"/login/?next={raw_next}", {"number": NUMBER})
    assert response["Location"] == "/verify/"
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert is_logged_in(client)
    location = response["Location"]
    landed = urlsplit(urljoin("http://testserver/verify/", location))
    assert landed.scheme == "http"
    assert landed.netloc == "testserver"
    assert "evil.example" not in landed.netloc
    assert not location.lower().lstrip().startswith("javascript")


def test_wrong_code_says_how_many_attempts_are_left(client, outbox):
    begin(client)
    code = last_code(outbox)
    response = client.post("/verify/", {"code": wrong(code)})
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    assert pending(client)["failed_attempts"] == 1
    assert messages_of(follow(client, response)) == ["That code is not right. 2 attempts left."]
    response = client.post("/verify/", {"code": wrong(code)})
    assert messages_of(follow(client, response)) == ["That code is not right. 1 attempt left."]
    assert not is_logged_in(client)


def test_three_wrong_codes_send_back_to_login(client, outbox):
    begin(client)
    code = last_code(outbox)
    for _ in range(2):
        follow(client, client.post("/verify/", {"code": wrong(code)}))
    response = client.post("/verify/", {"code": wrong(code)})
    assert response["Location"] == "/login/"
    assert pending(client) is None
    assert messages_of(follow(client, response)) == [
        "Wrong code too many times. Start again to get a new code."
    ]
    # The request is dead: the right code no longer logs in.
    response = client.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)


def test_right_code_after_two_wrong_ones_logs_in(client, outbox):
    start_login(client)
    code = last_code(outbox)
    for _ in range(2):
        client.post("/verify/", {"code": wrong(code)})
    response = client.post("/verify/", {"code": code})
    assert response["Location"] == "/"
    assert is_logged_in(client)


def test_malformed_code_is_a_form_error_not_an_attempt(client, outbox):
    start_login(client)
    response = client.post("/verify/", {"code": "12ab"})
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == [
        "Enter the 6-digit code from the message, digits only."
    ]
    assert MASKED in response.content.decode()
    assert pending(client)["failed_attempts"] == 0


def test_expired_code_sends_back_to_login_saying_it_expired(client, outbox, clock, settings):
    begin(client)
    clock.shift(settings.VERIFY_CODE_TTL + 1)
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)
    assert pending(client) is None
    [message] = messages_of(follow(client, response))
    assert "expired" in message


def test_code_works_until_just_before_it_expires(client, outbox, clock, settings):
    start_login(client)
    clock.shift(settings.VERIFY_CODE_TTL - 1)
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/"
    assert is_logged_in(client)


def test_verify_page_of_an_expired_request_goes_back_to_login(client, clock, settings):
    start_login(client)
    clock.shift(settings.VERIFY_CODE_TTL + 1)
    response = client.get("/verify/")
    assert response["Location"] == "/login/"
    assert pending(client) is None


def test_code_is_bound_to_the_session_that_asked_for_it(client, outbox):
    start_login(client)
    code = last_code(outbox)
    stranger = Client()
    response = stranger.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"
    assert not is_logged_in(stranger)
    # A stranger with a verification of their own cannot use it either.
    start_login(stranger, OTHER_NUMBER)
    if last_code(outbox, OTHER_NUMBER) != code:
        response = stranger.post("/verify/", {"code": code})
        assert response["Location"] == "/verify/"
        assert not is_logged_in(stranger)
    assert client.post("/verify/", {"code": code})["Location"] == "/"


def test_replayed_code_from_the_old_session_logs_nobody_in(client, outbox):
    start_login(client)
    code = last_code(outbox)
    replay = Client()
    replay.cookies["sessionid"] = session_cookie(client)
    assert client.post("/verify/", {"code": code})["Location"] == "/"
    response = replay.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"
    assert not is_logged_in(replay)
    assert "Log in</a>" in replay.get("/").content.decode()


def test_used_code_does_not_log_in_again(client, outbox):
    start_login(client)
    code = last_code(outbox)
    client.post("/verify/", {"code": code})
    client.post("/logout/")
    response = client.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)


def test_code_is_never_logged(client, outbox, caplog, clock):
    caplog.set_level(logging.DEBUG)
    start_login(client)
    code = last_code(outbox)
    client.post("/verify/", {"code": wrong(code)})
    a_minute_later(clock)
    client.post("/verify/resend/")
    new_code = last_code(outbox)
    client.post("/verify/", {"code": new_code})
    assert is_logged_in(client)
    assert caplog.records, "the flow is expected to log its events"
    for record in caplog.records:
        text = record.getMessage()
        for secret in {code, wrong(code), new_code}:
            assert secret not in text


# Resend, call, cancel ----------------------------------------------------------


def test_resend_sends_a_new_code_and_kills_the_old_one(client, outbox, clock):
    begin(client)
    old_code = last_code(outbox)
    a_minute_later(clock)
    response = client.post("/verify/resend/")
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    assert [message.channel for message in outbox] == ["sms", "sms"]
    new_code = last_code(outbox)
    assert messages_of(follow(client, response)) == [f"A new code is on its way to {MASKED}."]
    if old_code != new_code:
        response = client.post("/verify/", {"code": old_code})
        assert response["Location"] == "/verify/"
        assert not is_logged_in(client)
    response = client.post("/verify/", {"code": new_code})
    assert response["Location"] == "/"
    assert is_logged_in(client)


def test_resend_gives_a_fresh_set_of_attempts(client, outbox, clock):
    begin(client)
    for _ in range(2):
        follow(client, client.post("/verify/", {"code": wrong(last_code(outbox))}))
    a_minute_later(clock)
    follow(client, client.post("/verify/resend/"))
    assert pending(client)["failed_attempts"] == 0
    response = client.post("/verify/", {"code": wrong(last_code(outbox))})
    assert messages_of(follow(client, response)) == ["That code is not right. 2 attempts left."]


def test_resend_without_pending_goes_back_to_login(client, outbox):
    response = client.post("/verify/resend/")
    assert response["Location"] == "/login/"
    assert outbox == []
    assert messages_of(follow(client, response)) == [NO_PENDING]


def test_call_reads_the_code_in_a_voice_message(client, outbox, clock):
    begin(client)
    a_minute_later(clock)
    response = client.post("/verify/call/")
    assert response["Location"] == "/verify/"
    assert [(message.number, message.channel) for message in outbox] == [
        (NUMBER, "sms"),
        (NUMBER, "voice"),
    ]
    assert messages_of(follow(client, response)) == [
        f"We are calling {MASKED} to read you the code."
    ]
    response = client.post("/verify/", {"code": outbox[-1].code})
    assert response["Location"] == "/"
    assert is_logged_in(client)


def test_second_call_is_refused_with_a_message(client, outbox, clock):
    begin(client)
    a_minute_later(clock)
    follow(client, client.post("/verify/call/"))
    a_minute_later(clock)
    response = client.post("/verify/call/")
    assert response["Location"] == "/verify/"
    assert len(outbox) == 2
    assert messages_of(follow(client, response)) == [
        "A call is not possible now. Use the code we sent, or start again."
    ]


def test_call_without_pending_goes_back_to_login(client, outbox):
    response = client.post("/verify/call/")
    assert response["Location"] == "/login/"
    assert outbox == []


def test_cancel_clears_the_session_and_kills_the_code(client, outbox):
    begin(client)
    request_id, code = pending(client)["request_id"], last_code(outbox)
    response = client.post("/verify/cancel/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert pending(client) is None
    assert messages_of(follow(client, response)) == [
        "Cancelled. The code we sent will not work any more."
    ]
    with pytest.raises(VerificationExpired):
        get_backend().check(request_id, code)
    assert client.post("/verify/", {"code": code})["Location"] == "/login/"
    assert not is_logged_in(client)


def test_cancel_then_start_again_sends_a_new_code(client, outbox):
    start_login(client)
    client.post("/verify/cancel/")
    response = start_login(client)
    assert response["Location"] == "/verify/"
    assert len(outbox) == 2


@pytest.mark.parametrize("path", ["/verify/resend/", "/verify/call/", "/verify/cancel/"])
def test_actions_refuse_get(client, outbox, path):
    start_login(client)
    response = client.get(path)
    assert response.status_code == 405
    assert pending(client) is not None
    assert len(outbox) == 1


# Logout -------------------------------------------------------------------


def test_logout_kills_the_session_on_the_server(client, user):
    client.force_login(user)
    old_cookie = session_cookie(client)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not Session.objects.filter(session_key=old_cookie).exists()
    assert messages_of(follow(client, response)) == ["You have been logged out."]
    # Someone who kept the old cookie is anonymous.
    kept = Client()
    kept.cookies["sessionid"] = old_cookie
    home = kept.get("/").content.decode()
    assert "Hello" not in home
    assert 'href="/login/">Log in</a>' in home


def test_get_logout_does_not_log_out(client, user):
    client.force_login(user)
    response = client.get("/logout/")
    assert response.status_code == 405
    assert is_logged_in(client)
    assert "Hello +1 415-555-0100" in client.get("/").content.decode()


# Users --------------------------------------------------------------------


def test_first_login_creates_a_user_when_signup_is_on(client, outbox, settings):
    settings.PASSWORDLESS_SIGNUP = True
    assert User.objects.count() == 0
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    new_user = User.objects.get()
    assert str(new_user.phone_number_for_2fa) == NUMBER
    assert new_user.is_active
    assert not new_user.has_usable_password()
    assert not new_user.is_staff
    assert int(client.session[SESSION_KEY]) == new_user.pk


def test_existing_user_is_found_by_number(client, outbox, user):
    UserFactory(phone_number_for_2fa=OTHER_NUMBER)
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    assert User.objects.count() == 2
    assert int(client.session[SESSION_KEY]) == user.pk


def test_existing_user_is_found_whatever_format_was_typed(client, outbox, user):
    start_login(client, "+1 (415) 555-0100")
    client.post("/verify/", {"code": last_code(outbox)})
    assert int(client.session[SESSION_KEY]) == user.pk
    assert User.objects.count() == 1


def test_inactive_user_is_not_logged_in(client, outbox, settings):
    """A deactivated account's number gets the usual pages, but nothing is sent to it."""
    settings.PASSWORDLESS_SIGNUP = True
    UserFactory(phone_number_for_2fa=NUMBER, is_active=False)
    response = start_login(client)
    assert response["Location"] == "/verify/"
    assert outbox == []
    for code in ("000000", "123456", "654321"):
        response = client.post("/verify/", {"code": code})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)
    assert User.objects.count() == 1
    assert messages_of(follow(client, response))


# Pages, headers, error reports ---------------------------------------------------


def test_messages_are_rendered_in_the_base_template(client, outbox):
    start_login(client)
    html = client.get("/verify/").content.decode()
    assert 'class="messages"' not in html
    client.post("/verify/", {"code": wrong(last_code(outbox))})
    html = client.get("/verify/").content.decode()
    assert re.search(
        r'<ul class="messages" role="status" aria-live="polite">\s*'
        r'<li class="message message-error">That code is not right\. 2 attempts left\.</li>',
        html,
    )


@pytest.mark.parametrize("path", ["/login/", "/verify/"])
def test_login_and_verify_pages_are_never_cached(client, outbox, path):
    start_login(client)
    assert_never_cached(client.get(path))
    assert_never_cached(client.post(path, {"number": "x", "code": "x"}))


@pytest.mark.parametrize("path", ["/verify/resend/", "/verify/call/", "/verify/cancel/"])
def test_actions_are_never_cached(client, path):
    start_login(client)
    assert_never_cached(client.post(path))


def test_code_is_hidden_from_error_reports(client, outbox):
    start_login(client)
    code = last_code(outbox)
    response = client.post("/verify/", {"code": wrong(code)})
    request = response.wsgi_request
    assert tuple(request.sensitive_post_parameters) == ("code",)
    cleansed = SafeExceptionReporterFilter().get_post_parameters(request)
    assert cleansed["code"] == "********************"
    report = ExceptionReporter(request, ValueError, ValueError("boom"), None).get_traceback_text()
    assert wrong(code) not in report
    assert "********************" in report


def test_code_is_hidden_from_error_reports_on_success_too(client, outbox):
    start_login(client)
    code = last_code(outbox)
    response = client.post("/verify/", {"code": code})
    assert response["Location"] == "/"
    request = response.wsgi_request
    report = ExceptionReporter(request, ValueError, ValueError("boom"), None).get_traceback_text()
    assert code not in report


def test_code_is_stored_nowhere_in_plain_text(client, outbox):
    start_login(client)
    code = last_code(outbox)
    client.post("/verify/", {"code": wrong(code)})
    text = stored_text()
    assert pending(client)["request_id"] in text
    assert not holds_code(text, code)
    assert not holds_code(text, wrong(code))


# When the provider says no ---------------------------------------------------------


class RefusingBackend(locmem.VerificationBackend):
    """The locmem backend, made to fail the way a provider can."""

    start_error = None
    check_error = None
    next_error = None

    def start(self, number):
        if self.start_error:
            raise self.start_error
        return super().start(number)

    def check(self, request_id, code):
        if self.check_error:
            raise self.check_error
        return super().check(request_id, code)

    def trigger_next(self, request_id):
        if self.next_error:
            raise self.next_error
        return super().trigger_next(request_id)


@pytest.fixture
def provider(settings):
    settings.VERIFICATION_BACKEND = f"{__name__}.RefusingBackend"
    yield RefusingBackend
    RefusingBackend.start_error = RefusingBackend.check_error = RefusingBackend.next_error = None


def test_number_the_provider_cannot_reach_is_a_field_error(client, outbox, provider):
    provider.start_error = InvalidNumber("unroutable")
    response = start_login(client)
    assert response.status_code == 200
    assert response.context["form"].errors["number"] == [
        "We cannot send a code to this number. Check it, or use another phone number."
    ]
    assert pending(client) is None


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (Throttled("slow down"), "Too many attempts. Try again later."),
        (
            ProviderUnavailable("timeout"),
            "The service is temporarily unavailable. Nothing was lost: try again in a moment.",
        ),
        (
            ConcurrentVerification("live", request_id="x" * 32),
            "A code was sent to this number a moment ago. Wait a few minutes, then try again.",
        ),
    ],
)
def test_refused_start_shows_the_form_again_with_a_message(client, outbox, provider, error, text):
    provider.start_error = error
    response = start_login(client)
    assert response.status_code == 200
    assert messages_of(response) == [text]
    assert f'<li class="message message-error">{text}</li>' in response.content.decode()
    assert pending(client) is None
    assert outbox == []


def test_provider_failure_during_check_loses_nothing(client, outbox, provider):
    start_login(client)
    before = pending(client)
    provider.check_error = ProviderUnavailable("timeout")
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/verify/"
    assert not is_logged_in(client)
    assert pending(client) == before
    assert messages_of(follow(client, response))[-1] == (
        "The service is temporarily unavailable. Nothing was lost: try again in a moment."
    )
    provider.check_error = None
    assert client.post("/verify/", {"code": last_code(outbox)})["Location"] == "/"
    assert is_logged_in(client)


def test_request_ended_upstream_sends_back_to_login(client, outbox):
    start_login(client)
    get_backend().cancel(pending(client)["request_id"])
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/login/"
    assert pending(client) is None
    assert not is_logged_in(client)
    assert messages_of(follow(client, response))[-1] == (
        "That code has expired or was already used. Start again to get a new code."
    )


def test_call_for_a_request_ended_upstream_sends_back_to_login(client, outbox, clock):
    begin(client)
    get_backend().cancel(pending(client)["request_id"])
    a_minute_later(clock)
    response = client.post("/verify/call/")
    assert response["Location"] == "/login/"
    assert pending(client) is None
    assert len(outbox) == 1


def test_resend_when_the_provider_is_down_keeps_its_promise(client, outbox, provider, clock):
    """A failed resend may not claim that nothing was lost when the code sent is now dead."""
    begin(client)
    code = last_code(outbox)
    provider.start_error = ProviderUnavailable("timeout")
    a_minute_later(clock)
    response = client.post("/verify/resend/")
    # The old code was cancelled for the new one: the person is told to start
    # again, not promised that nothing was lost.
    assert response["Location"] == "/login/"
    told = messages_of(follow(client, response))[-1]
    assert "the previous one no longer works" in told
    assert "Nothing was lost" not in told
    assert len(outbox) == 1
    provider.start_error = None
    response = client.post("/verify/", {"code": code})
    assert response["Location"] == "/login/"
    assert not is_logged_in(client)
