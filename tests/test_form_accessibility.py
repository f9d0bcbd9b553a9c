"""Every form field is labelled, and what its input points at for help and errors exists.

A screen reader reads an input's label and, through aria-describedby, its
hint and its errors. A reference to an id that is not on the page is read as
nothing: the person never hears the hint or why their input was refused.
"""

from html.parser import HTMLParser

import pytest

from .conftest import start_login

pytestmark = pytest.mark.django_db


class Fields(HTMLParser):
    """Collect the ids on a page, the labels' targets and the form inputs."""

    def __init__(self):
        super().__init__()
        self.ids, self.labelled, self.inputs = set(), set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "label":
            self.labelled.add(attrs.get("for"))
        if tag == "input" and attrs.get("type") not in {"hidden", "submit"}:
            self.inputs.append(attrs)


def fields_of(response) -> Fields:
    assert response.status_code == 200
    parser = Fields()
    parser.feed(response.content.decode())
    assert parser.inputs, "the page shows no form field"
    return parser


def assert_described(response):
    page = fields_of(response)
    for attrs in page.inputs:
        assert attrs["id"] in page.labelled, f"{attrs['name']} has no label"
        for target in attrs.get("aria-describedby", "").split():
            assert target in page.ids, f"{attrs['name']} points at #{target}, not on the page"


@pytest.fixture
def logged_in(client, user):
    user.set_password("an old password 1")
    user.save()
    client.force_login(user)
    return client


PAGES = {
    "phone login": lambda client: client.get("/login/"),
    "phone login, refused": lambda client: start_login(client, "not a number"),
    "password login": lambda client: client.get("/login/password/"),
    "password login, refused": lambda client: client.post(
        "/login/password/", {"username": "", "password": ""}
    ),
    "code": lambda client: (start_login(client), client.get("/verify/"))[1],
    "code, refused": lambda client: (
        start_login(client),
        client.post("/verify/", {"code": "x"}, follow=True),
    )[1],
}
ACCOUNT_PAGES = {
    "new phone": lambda client: client.get("/account/phone/"),
    "new phone, refused": lambda client: client.post("/account/phone/", {"number": "123"}),
    "password": lambda client: client.get("/account/password/"),
    "password, refused": lambda client: client.post(
        "/account/password/", {"old_password": "", "new_password1": "a", "new_password2": "b"}
    ),
}


@pytest.mark.parametrize("show", PAGES.values(), ids=PAGES.keys())
def test_fields_are_labelled_and_described_by_what_is_on_the_page(client, outbox, show):
    assert_described(show(client))


@pytest.mark.parametrize("show", ACCOUNT_PAGES.values(), ids=ACCOUNT_PAGES.keys())
def test_account_fields_are_labelled_and_described_by_what_is_on_the_page(logged_in, show):
    assert_described(show(logged_in))


def test_the_phone_hint_is_read_with_the_phone_field(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert 'aria-describedby="id_number_helptext"' in html
    assert '<div class="hint" id="id_number_helptext">With the country code' in html


def test_a_refused_number_is_read_with_its_error(client, outbox):
    html = start_login(client, "not a number").content.decode()
    assert 'aria-invalid="true" aria-describedby="id_number_helptext id_number_error"' in html
    assert '<div id="id_number_error">' in html
