"""Password login, and the code that follows it for users who chose a second factor."""

import time

import pytest
import time_machine

from flows.services import PENDING_SESSION_KEY

from .conftest import NUMBER, last_code, messages_of, pending, start_login
from .factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def two_factor_user():
    return UserFactory(username="alice", phone_number_for_2fa=NUMBER, is_2fa_enabled=True)


def password_login(client, username="alice", password=PASSWORD, **extra):
    return client.post("/login/password/", {"username": username, "password": password}, **extra)


def logged_in_user_id(client):
    return client.session.get("_auth_user_id")


def test_phone_and_password_pages_link_to_each_other(client):
    phone_page = client.get("/login/").content.decode()
    password_page = client.get("/login/password/").content.decode()
    assert 'href="/login/password/"' in phone_page
    assert "Use a password instead" in phone_page
    assert 'href="/login/"' in password_page


def test_user_without_second_factor_is_logged_in_by_password(client, outbox):
    user = UserFactory(username="bob")
    response = password_login(client, username="bob")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(client) == str(user.pk)
    assert outbox == []


def test_wrong_password_shows_the_form_again(client):
    UserFactory(username="bob")
    response = password_login(client, username="bob", password="wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_second_factor_user_gets_a_code_and_is_not_logged_in_yet(client, outbox, two_factor_user):
    response = password_login(client)
    assert response["Location"] == "/verify/"
    assert logged_in_user_id(client) is None
    state = pending(client)
    assert state["purpose"] == "second_factor"
    assert state["user_id"] == two_factor_user.pk
    assert state["number"] == NUMBER
    assert outbox[-1].number == NUMBER
    page = client.get("/verify/").content.decode()
    assert "finish logging in" in page
    assert "+1 415 ••• ••00" in page


def test_nothing_behind_login_required_opens_between_password_and_code(client, two_factor_user):
    password_login(client)
    account = client.get("/account/")
    assert account.status_code == 302
    assert account["Location"].startswith("/login/?next=/account/")
    assert "Log in" in client.get("/").content.decode()
    assert logged_in_user_id(client) is None


def test_right_code_after_password_logs_in_and_honours_next(client, outbox, two_factor_user):
    response = client.post(
        "/login/password/?next=/account/", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/verify/"
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/account/"
    assert logged_in_user_id(client) == str(two_factor_user.pk)
    assert PENDING_SESSION_KEY not in client.session


def test_half_login_expires_with_the_code(client, outbox, two_factor_user):
    password_login(client)
    code = last_code(outbox)
    with time_machine.travel(time.time() + 301):
        response = client.post("/verify/", {"code": code})
        assert response["Location"] == "/login/"
        assert logged_in_user_id(client) is None
        assert client.get("/account/").status_code == 302


def test_three_wrong_codes_after_password_log_nobody_in(client, outbox, two_factor_user):
    password_login(client)
    right = last_code(outbox)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(2):
        assert client.post("/verify/", {"code": wrong})["Location"] == "/verify/"
    response = client.post("/verify/", {"code": wrong}, follow=True)
    assert "Wrong code too many times" in " ".join(messages_of(response))
    assert client.post("/verify/", {"code": right})["Location"] == "/login/"
    assert logged_in_user_id(client) is None


def test_phone_alone_does_not_log_in_a_second_factor_user(client, outbox, two_factor_user):
    start_login(client)
    response = client.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert response.redirect_chain[-1][0] == "/login/password/"
    assert "Log in with your password first" in " ".join(messages_of(response))
    assert logged_in_user_id(client) is None


def test_setting_allows_phone_only_login_for_second_factor_users(
    client, outbox, settings, two_factor_user
):
    settings.PHONE_LOGIN_FOR_2FA_USERS = True
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    assert logged_in_user_id(client) == str(two_factor_user.pk)


def test_second_factor_user_without_password_may_log_in_by_phone(client, outbox):
    user = UserFactory(phone_number_for_2fa=NUMBER, is_2fa_enabled=True, password=None)
    user.set_unusable_password()
    user.save()
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    assert logged_in_user_id(client) == str(user.pk)


def test_second_factor_without_phone_number_fails_closed(client, outbox):
    UserFactory(username="carol", phone_number_for_2fa=None, is_2fa_enabled=True)
    response = password_login(client, username="carol")
    assert response.status_code == 200
    assert "has no phone number" in " ".join(messages_of(response))
    assert logged_in_user_id(client) is None
    assert outbox == []


def test_account_deactivated_between_steps_is_not_logged_in(client, outbox, two_factor_user):
    password_login(client)
    two_factor_user.is_active = False
    two_factor_user.save()
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/login/"
    assert logged_in_user_id(client) is None


def test_wrong_passwords_are_limited_per_username(client, settings):
    settings.LOGIN_RATE_PASSWORD_PER_USERNAME = "3/15m"
    UserFactory(username="bob")
    for index in range(3):
        ip = f"10.0.0.{index}"
        assert password_login(client, "bob", "wrong", REMOTE_ADDR=ip).status_code == 200
    response = password_login(client, "bob", REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many attempts" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_wrong_passwords_are_limited_per_ip(client, settings):
    settings.LOGIN_RATE_PASSWORD_PER_IP = "3/15m"
    UserFactory(username="bob")
    for name in ("x1", "x2", "x3"):
        password_login(client, name, "wrong")
    response = password_login(client, "bob")
    assert response.status_code == 429
    assert logged_in_user_id(client) is None


def test_right_passwords_do_not_count_towards_the_limit(client, settings):
    settings.LOGIN_RATE_PASSWORD_PER_USERNAME = "2/15m"
    UserFactory(username="bob")
    for _ in range(4):
        client.logout()
        assert password_login(client, "bob").status_code == 302


def test_password_view_hides_the_password_from_error_reports(rf):
    from flows.views import PasswordLoginView

    request = rf.post("/login/password/", {"username": "x", "password": "secret"})
    request.session = {}
    PasswordLoginView.as_view()(request)
    assert request.sensitive_post_parameters == ("password",)


def test_look_alike_usernames_share_one_counter(client, settings):
    settings.LOGIN_RATE_PASSWORD_PER_USERNAME = "2/15m"
    UserFactory(username="alice")
    for index, name in enumerate(["\uff41lice", "\U0001d41alice"]):
        password_login(client, name, "wrong", REMOTE_ADDR=f"10.3.0.{index}")
    # Full-width "alice" logs in as alice: it may not get a counter of its own.
    response = password_login(client, "\uff41\uff4c\uff49\uff43\uff45", REMOTE_ADDR="10.3.0.9")
    assert response.status_code == 429
    assert logged_in_user_id(client) is None
