"""The account page: phone number, second factor and password, each change behind a code."""

import pytest

from accounts.models import User
from verification import get_backend
from verification.exceptions import VerificationExpired

from .conftest import NUMBER, OTHER_NUMBER, last_code, messages_of, pending
from .factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_NUMBER = "+14155550123"


@pytest.fixture
def phone_user(client):
    user = UserFactory(username="dana", phone_number_for_2fa=NUMBER)
    client.force_login(user)
    return user


def refreshed(user):
    user.refresh_from_db()
    return user


def all_messages(response):
    return " ".join(messages_of(response))


def test_account_page_needs_login(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/"


def test_account_page_shows_username_masked_phone_and_second_factor(client, phone_user):
    page = client.get("/account/").content.decode()
    assert "dana" in page
    assert "+1 415 ••• ••00" in page
    assert NUMBER not in page
    assert "Second factor" in page and "Off" in page
    assert 'action="/account/2fa/enable/"' in page
    assert 'href="/account/phone/"' in page
    assert 'href="/account/password/"' in page


def test_adding_a_phone_number_saves_it_only_after_its_code(client, outbox):
    user = UserFactory(phone_number_for_2fa=None)
    client.force_login(user)
    response = client.post("/account/phone/", {"number": NEW_NUMBER})
    assert response["Location"] == "/verify/"
    assert pending(client)["purpose"] == "new_phone"
    assert refreshed(user).phone_number_for_2fa is None
    assert "confirm your new phone number" in client.get("/verify/").content.decode()

    response = client.post("/verify/", {"code": last_code(outbox, NEW_NUMBER)}, follow=True)
    assert response.redirect_chain[-1][0] == "/account/"
    assert "Your phone number is now +1 415 ••• ••23." in all_messages(response)
    assert str(refreshed(user).phone_number_for_2fa) == NEW_NUMBER


def test_changing_the_phone_needs_the_current_phone_then_the_new_one(client, outbox, phone_user):
    response = client.post("/account/phone/", {"number": NEW_NUMBER})
    assert response["Location"] == "/verify/"
    assert outbox[-1].number == NUMBER
    assert pending(client)["purpose"] == "step_up"

    response = client.post("/verify/", {"code": last_code(outbox, NUMBER)})
    assert response["Location"] == "/verify/"
    assert outbox[-1].number == NEW_NUMBER
    assert str(refreshed(phone_user).phone_number_for_2fa) == NUMBER

    client.post("/verify/", {"code": last_code(outbox, NEW_NUMBER)})
    assert str(refreshed(phone_user).phone_number_for_2fa) == NEW_NUMBER


def test_wrong_code_for_the_new_phone_changes_nothing(client, outbox, phone_user):
    client.post("/account/phone/", {"number": NEW_NUMBER})
    client.post("/verify/", {"code": last_code(outbox, NUMBER)})
    right = last_code(outbox, NEW_NUMBER)
    client.post("/verify/", {"code": "000000" if right != "000000" else "111111"})
    assert str(refreshed(phone_user).phone_number_for_2fa) == NUMBER


def test_a_number_of_another_account_gets_nothing_and_no_code_works(client, outbox):
    """Answered like a free number (the code page), but nothing is sent and nothing saved."""
    user = UserFactory(phone_number_for_2fa=None)
    client.force_login(user)
    UserFactory(username="secret-owner", phone_number_for_2fa=OTHER_NUMBER)
    response = client.post("/account/phone/", {"number": OTHER_NUMBER})
    assert response["Location"] == "/verify/"
    assert outbox == []
    for _ in range(3):
        response = client.post("/verify/", {"code": "123456"}, follow=True)
    assert "Wrong code too many times" in all_messages(response)
    assert "secret-owner" not in response.content.decode()
    assert refreshed(user).phone_number_for_2fa != OTHER_NUMBER


def test_the_current_number_is_refused_as_a_new_one(client, outbox, phone_user):
    response = client.post("/account/phone/", {"number": NUMBER})
    assert "This is already your phone number." in response.content.decode()
    assert outbox == []


def test_invalid_new_number_is_a_form_error(client, outbox, phone_user):
    response = client.post("/account/phone/", {"number": "not a number"})
    assert response.status_code == 200
    assert "Enter a valid phone number" in response.content.decode()
    assert outbox == []


def test_second_factor_turns_on_with_phone_and_password(client, phone_user):
    response = client.post("/account/2fa/enable/", follow=True)
    assert "from now on you log in with your password and a code" in all_messages(response)
    assert refreshed(phone_user).is_2fa_enabled


def test_second_factor_needs_a_phone_number(client):
    user = UserFactory(phone_number_for_2fa=None)
    client.force_login(user)
    response = client.post("/account/2fa/enable/", follow=True)
    assert "Add a phone number first." in all_messages(response)
    assert not refreshed(user).is_2fa_enabled


def test_second_factor_needs_a_password(client):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    response = client.post("/account/2fa/enable/", follow=True)
    assert "Set a password first" in all_messages(response)
    assert not refreshed(user).is_2fa_enabled


def test_turning_the_second_factor_off_needs_a_fresh_code(client, outbox, phone_user):
    phone_user.is_2fa_enabled = True
    phone_user.save()
    client.force_login(phone_user)
    response = client.post("/account/2fa/disable/")
    assert response["Location"] == "/verify/"
    assert refreshed(phone_user).is_2fa_enabled
    assert "confirm it is you" in client.get("/verify/").content.decode()

    response = client.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert "The second factor is off" in all_messages(response)
    assert not refreshed(phone_user).is_2fa_enabled


def test_removing_the_phone_needs_a_fresh_code_and_turns_the_second_factor_off(
    client, outbox, phone_user
):
    phone_user.is_2fa_enabled = True
    phone_user.save()
    client.force_login(phone_user)
    client.post("/account/phone/remove/")
    assert refreshed(phone_user).phone_number_for_2fa == NUMBER
    response = client.post("/verify/", {"code": last_code(outbox)}, follow=True)
    assert "Your phone number is removed" in all_messages(response)
    user = refreshed(phone_user)
    assert user.phone_number_for_2fa is None
    assert not user.is_2fa_enabled


def test_step_up_is_refused_without_a_phone(client, outbox):
    user = UserFactory(phone_number_for_2fa=None)
    client.force_login(user)
    response = client.post("/account/phone/remove/", follow=True)
    assert "Your account has no phone number." in all_messages(response)
    assert outbox == []


def test_state_changes_need_post(client, phone_user):
    for url in ("/account/2fa/enable/", "/account/2fa/disable/", "/account/phone/remove/"):
        assert client.get(url).status_code == 405
    assert not refreshed(phone_user).is_2fa_enabled


def test_a_phone_only_user_sets_a_password_then_turns_on_the_second_factor(client, outbox):
    user = UserFactory(username="erin", phone_number_for_2fa=NUMBER)
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    page = client.get("/account/password/").content.decode()
    assert "Set a password" in page
    assert "old_password" not in page
    response = client.post(
        "/account/password/",
        {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    # A first password is a new way in: a fresh code to the phone comes first.
    assert response["Location"] == "/verify/"
    assert not refreshed(user).has_usable_password()
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/account/"
    assert refreshed(user).check_password("a new long passphrase")
    assert client.get("/account/").status_code == 200  # still logged in
    client.post("/account/2fa/enable/")
    assert refreshed(user).is_2fa_enabled

    client.post("/logout/")
    response = client.post(
        "/login/password/", {"username": "erin", "password": "a new long passphrase"}
    )
    assert response["Location"] == "/verify/"
    client.post("/verify/", {"code": last_code(outbox)})
    assert client.session["_auth_user_id"] == str(user.pk)


def test_changing_a_password_needs_the_old_one(client, phone_user):
    response = client.post(
        "/account/password/",
        {
            "old_password": "wrong",
            "new_password1": "another long passphrase",
            "new_password2": "another long passphrase",
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert refreshed(phone_user).check_password("correct horse battery staple")


def test_a_new_start_replaces_the_pending_verification(client, outbox):
    user = UserFactory(phone_number_for_2fa=None)
    client.force_login(user)
    client.post("/account/phone/", {"number": NEW_NUMBER})
    first = pending(client)
    first_code = last_code(outbox, NEW_NUMBER)
    client.post("/account/phone/", {"number": OTHER_NUMBER})
    second = pending(client)
    assert second["number"] == OTHER_NUMBER
    assert second["request_id"] != first["request_id"]
    # The first request was cancelled upstream: its code is dead.
    with pytest.raises(VerificationExpired):
        get_backend().check(first["request_id"], first_code)


def test_the_same_step_again_reuses_the_code_on_its_way(client, outbox, phone_user):
    phone_user.is_2fa_enabled = True
    phone_user.save()
    client.force_login(phone_user)
    client.post("/account/2fa/disable/")
    first = pending(client)
    response = client.post("/account/2fa/disable/", follow=True)
    assert "We already sent a code to +1 415 ••• ••00 a moment ago" in all_messages(response)
    assert pending(client) == first
    assert len(outbox) == 1
    client.post("/verify/", {"code": last_code(outbox)})
    assert not refreshed(phone_user).is_2fa_enabled


def test_a_code_on_its_way_for_one_step_never_approves_another(client, outbox, phone_user):
    """A stolen session cannot swap the step a person's code will approve."""
    phone_user.is_2fa_enabled = True
    phone_user.save()
    client.force_login(phone_user)
    client.post("/account/phone/remove/")  # the person asks to remove their phone
    asked = pending(client)
    # Someone holding the same session slips in another change for that phone.
    response = client.post("/account/2fa/disable/", follow=True)
    assert "A code for another step is already on its way" in all_messages(response)
    assert pending(client) == asked
    assert "remove your phone number" in client.get("/verify/").content.decode()
    client.post("/verify/", {"code": last_code(outbox)})
    user = refreshed(phone_user)
    assert user.phone_number_for_2fa is None  # what the person asked for
    assert len(outbox) == 1


def test_trying_numbers_on_the_account_page_is_limited(client, outbox, phone_user, settings):
    settings.ACCOUNT_RATE_PHONE_CHANGE_PER_USER = "3/h"
    UserFactory(phone_number_for_2fa=OTHER_NUMBER)
    for _ in range(3):
        response = client.post("/account/phone/", {"number": OTHER_NUMBER})
        assert response.status_code == 302
    response = client.post("/account/phone/", {"number": OTHER_NUMBER})
    assert response.status_code == 429
    assert "This number cannot be used" not in response.content.decode()


def test_a_pending_change_does_not_survive_logout(client, outbox, phone_user):
    client.post("/account/2fa/disable/")
    client.post("/logout/")
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/login/"
    assert User.objects.get(pk=phone_user.pk).phone_number_for_2fa == NUMBER


def test_a_stolen_session_cannot_add_a_first_password_without_the_phone(client, outbox):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    client.post(
        "/account/password/",
        {"new_password1": "thief's passphrase 1", "new_password2": "thief's passphrase 1"},
    )
    right = last_code(outbox)
    for _ in range(3):
        client.post("/verify/", {"code": "000000" if right != "000000" else "111111"})
    assert not refreshed(user).has_usable_password()
    assert pending(client) is None
