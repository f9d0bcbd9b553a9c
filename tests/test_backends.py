from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in
from django.test import Client
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber

from accounts.backends import ModelBackend
from accounts.models import User
from tests.conftest import NUMBER, last_code, start_login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def fields(user):
    return {key: value for key, value in vars(user).items() if key != "_state"}


def test_the_user_of_a_session_is_the_one_djangos_backend_finds():
    user = UserFactory(is_2fa_enabled=True, first_name="Ada")
    found = ModelBackend().get_user(user.pk)
    assert fields(found) == fields(DjangoModelBackend().get_user(user.pk))
    assert isinstance(found.phone_number_for_2fa, PhoneNumber)
    assert found.last_login is None and found.date_joined.tzinfo is not None
    assert not found._state.adding and found._state.db == "default"


@pytest.mark.parametrize("user_id", [10**9, None])
def test_no_user_for_an_id_that_names_nobody(user_id):
    UserFactory()
    assert ModelBackend().get_user(user_id) is None


def test_no_user_for_a_deactivated_account():
    user = UserFactory(is_active=False)
    assert ModelBackend().get_user(user.pk) is None


def test_a_phone_login_is_kept_by_the_projects_backend(client, outbox):
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    assert client.session[BACKEND_SESSION_KEY] == "accounts.backends.ModelBackend"
    home = client.get("/")
    assert home.context["user"].phone_number_for_2fa == NUMBER
    assert home.context["user"].is_authenticated


def test_a_deactivated_person_is_logged_out_on_their_next_page(client, outbox):
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    home = client.get("/")
    user = home.context["user"]
    user.is_active = False
    user.save()
    assert not client.get("/").context["user"].is_authenticated


def test_a_password_still_logs_in_through_it(client):
    user = UserFactory(username="ada")
    response = client.post(
        "/login/password/", {"username": "ada", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == "accounts.backends.ModelBackend"
    assert client.get("/").context["user"] == user


# last_login -----------------------------------------------------------------


def test_a_phone_login_records_when_on_that_account_only(client, outbox):
    someone_else = UserFactory()
    before = timezone.now()
    start_login(client)
    client.post("/verify/", {"code": last_code(outbox)})
    user = User.objects.get(phone_number_for_2fa=NUMBER)
    assert before <= user.last_login <= timezone.now()
    someone_else.refresh_from_db()
    assert someone_else.last_login is None


def test_a_password_login_records_when():
    user = UserFactory(username="ada")
    client = Client()
    client.post("/login/password/", {"username": "ada", "password": "correct horse battery staple"})
    user.refresh_from_db()
    assert user.last_login is not None
    assert timezone.now() - user.last_login < timedelta(minutes=1)


def test_a_login_is_recorded_once_by_djangos_own_receiver():
    receivers, _async_receivers = user_logged_in._live_receivers(sender=User)
    assert receivers == [update_last_login]
