import datetime

import pytest
from django import forms

from accounts.models import User

from .factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def people(db):
    return {
        "alice": UserFactory(
            username="alice", phone_number_for_2fa="+14155550100", is_2fa_enabled=True
        ),
        "bob": UserFactory(username="bob", phone_number_for_2fa="+442079460018"),
        "carol": UserFactory(username="carol", phone_number_for_2fa=None),
    }


def listed(response):
    return sorted(user.username for user in response.context["cl"].result_list)


def change_url(user):
    return f"/admin/accounts/user/{user.pk}/change/"


def form_data(response):
    """Return the POST data of the admin form as it was rendered, ready to edit and submit."""
    form = response.context["adminform"].form
    data = {"_save": "Save"}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if value in (None, ""):
            continue
        if isinstance(field, forms.SplitDateTimeField):
            if isinstance(value, str):
                value = datetime.datetime.fromisoformat(value)
            data[f"{name}_0"] = value.date().isoformat()
            data[f"{name}_1"] = value.time().strftime("%H:%M:%S")
        elif isinstance(field, forms.ModelMultipleChoiceField):
            data[name] = [str(getattr(item, "pk", item)) for item in value]
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        else:
            data[name] = str(value)
    return data


def row_of(html, username):
    """Return the changelist row of `username`, from its name cell to the end of the row."""
    start = html.index(f">{username}</a></th>")
    return html[start : html.index("</tr>", start)]


def test_changelist_shows_phone_number_and_second_factor(admin_client, people):
    response = admin_client.get(CHANGELIST)
    html = response.content.decode()
    assert response.status_code == 200
    headers = [header["text"] for header in response.context["result_headers"]]
    assert headers[1:4] == ["username", "phone number", "second factor enabled"]
    alice, bob, carol = (row_of(html, name) for name in ("alice", "bob", "carol"))
    assert '<td class="field-phone_number_for_2fa">+14155550100</td>' in alice
    assert (
        '<td class="field-is_2fa_enabled"><img src="/static/admin/img/icon-yes.svg" alt="True">'
        in alice
    )
    assert '<td class="field-phone_number_for_2fa">+442079460018</td>' in bob
    assert (
        '<td class="field-is_2fa_enabled"><img src="/static/admin/img/icon-no.svg" alt="False">'
        in bob
    )
    assert '<td class="field-phone_number_for_2fa">-</td>' in carol


@pytest.mark.parametrize("term", ["+14155550100", "4155550100", "5550100", "+1 415 555 0100"])
def test_search_by_phone_number(admin_client, people, term):
    response = admin_client.get(CHANGELIST, {"q": term})
    assert listed(response) == ["alice"]


def test_search_by_username(admin_client, people):
    assert listed(admin_client.get(CHANGELIST, {"q": "bob"})) == ["bob"]


def test_filter_by_second_factor(admin_client, people):
    assert listed(admin_client.get(CHANGELIST, {"is_2fa_enabled__exact": "1"})) == ["alice"]
    assert listed(admin_client.get(CHANGELIST, {"is_2fa_enabled__exact": "0"})) == [
        "admin",
        "bob",
        "carol",
    ]
    html = admin_client.get(CHANGELIST).content.decode()
    assert "By second factor enabled" in html


def test_change_form_shows_the_phone_fields(admin_client, people):
    response = admin_client.get(change_url(people["alice"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="phone_number_for_2fa"' in html
    assert 'value="+14155550100"' in html
    assert 'name="is_2fa_enabled"' in html
    assert ">Phone</h2>" in html


def test_change_form_saves_the_phone_number_in_e164(admin_client, people):
    carol = people["carol"]
    data = form_data(admin_client.get(change_url(carol)))
    data["phone_number_for_2fa"] = "+1 (415) 555-0123"
    data["is_2fa_enabled"] = "on"
    response = admin_client.post(change_url(carol), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    carol.refresh_from_db()
    assert str(carol.phone_number_for_2fa) == "+14155550123"
    assert carol.is_2fa_enabled
    assert User.objects.filter(phone_number_for_2fa="+14155550123").get() == carol


@pytest.mark.parametrize("typed", ["12345", "not a number", "+1 415 555 01000", "+999 123"])
def test_change_form_refuses_an_invalid_number(admin_client, people, typed):
    bob = people["bob"]
    data = form_data(admin_client.get(change_url(bob)))
    data["phone_number_for_2fa"] = typed
    response = admin_client.post(change_url(bob), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone_number_for_2fa"]
    bob.refresh_from_db()
    assert str(bob.phone_number_for_2fa) == "+442079460018"


def test_change_form_refuses_a_number_of_another_user(admin_client, people):
    bob = people["bob"]
    data = form_data(admin_client.get(change_url(bob)))
    data["phone_number_for_2fa"] = "+1 415 555 0100"  # alice's, typed another way
    response = admin_client.post(change_url(bob), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone_number_for_2fa"] == [
        "User with this Phone number already exists."
    ]
    bob.refresh_from_db()
    assert str(bob.phone_number_for_2fa) == "+442079460018"


def test_several_users_may_have_no_phone_number(admin_client, people):
    bob = people["bob"]
    data = form_data(admin_client.get(change_url(bob)))
    data["phone_number_for_2fa"] = ""
    response = admin_client.post(change_url(bob), data)
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.phone_number_for_2fa in (None, "")
    assert User.objects.filter(phone_number_for_2fa__isnull=True).count() == 3


def test_add_form_takes_the_phone_fields(admin_client, db):
    response = admin_client.get("/admin/accounts/user/add/")
    data = form_data(response)
    data.update(
        {
            "username": "dave",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "usable_password": "true",
            "phone_number_for_2fa": "+33 6 12 34 56 78",
            "is_2fa_enabled": "on",
        }
    )
    response = admin_client.post("/admin/accounts/user/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    dave = User.objects.get(username="dave")
    assert str(dave.phone_number_for_2fa) == "+33612345678"
    assert dave.is_2fa_enabled
