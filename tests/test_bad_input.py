"""Whatever arrives in a request: a clear error, never an HTTP 500, nothing written."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import User

from .conftest import NUMBER, last_code, messages_of, pending, start_login

pytestmark = pytest.mark.django_db

NUMBER_ERRORS = {
    "Enter your phone number.",
    "Enter a valid phone number in international format, starting with + and the country "
    "code, e.g. +1 415 555 0100.",
    "Null characters are not allowed.",
}
CODE_ERROR = "Enter the 6-digit code from the message, digits only."
CODE_ERRORS = {
    "Enter the code from the message.",
    CODE_ERROR,
    "Null characters are not allowed.",
}
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_PAGE = "This form has expired"


def rows():
    return {"users": User.objects.count(), "sessions": Session.objects.count()}


def no_500_client():
    """A client that answers like the server does, instead of raising the view's exception."""
    return Client(raise_request_exception=False)


BAD_NUMBERS = [
    "",
    " ",
    "\t\n",
    "abc",
    "+",
    "0",
    "+1",
    "+1 415",
    "+999 1234567",
    "+1 415 555 01000",
    "+1 " + "4" * 40,
    "+" + "1" * 10_000,
    "+1415\x005550100",
    "\x00",
    "+1415\x075550100",
    "\x1b[31m+14155550100",
    "\U0001f4de",
    "\ufffd\ufffd",
    "+1 415 555 0100\n+1 415 555 0199",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%2B14155550100",
    "\uff10",
]


@pytest.mark.parametrize("typed", BAD_NUMBERS)
def test_bad_number_is_a_form_error_and_writes_nothing(outbox, typed):
    client = no_500_client()
    before = rows()
    response = client.post("/login/", {"number": typed})
    assert response.status_code == 200
    errors = response.context["form"].errors["number"]
    assert errors
    assert set(errors) <= NUMBER_ERRORS | {
        f"Ensure this value has at most 32 characters (it has {len(typed.strip())})."
    }
    assert errors[0] in response.content.decode()
    assert rows() == before
    assert outbox == []


def test_missing_number_field_is_a_form_error(outbox):
    client = no_500_client()
    before = rows()
    response = client.post("/login/", {"phone": NUMBER})
    assert response.status_code == 200
    assert response.context["form"].errors["number"] == ["Enter your phone number."]
    assert rows() == before
    assert outbox == []


def test_number_sent_as_json_is_not_read(outbox):
    client = no_500_client()
    response = client.post("/login/", {"number": NUMBER}, content_type="application/json")
    assert response.status_code == 200
    assert response.context["form"].errors["number"] == ["Enter your phone number."]
    assert outbox == []


def test_number_that_is_not_utf8_is_a_form_error(outbox):
    client = no_500_client()
    response = client.post(
        "/login/", b"number=%FF%FE%2B1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert response.context["form"].errors["number"]
    assert outbox == []


def test_put_to_login_is_not_a_500(outbox):
    response = no_500_client().put("/login/", "number=%2B14155550100")
    assert response.status_code in {200, 405}
    assert outbox == []


@pytest.mark.parametrize("path", ["/login/", "/verify/"])
def test_huge_body_is_refused_with_400(path, outbox):
    client = no_500_client()
    start_login(client)
    before = {**rows(), "pending": pending(client)}
    response = client.post(path, {"number": "1" * 3_000_000, "code": "1" * 3_000_000})
    assert response.status_code == 400
    assert {**rows(), "pending": pending(client)} == before
    assert len(outbox) == 1


def test_too_many_fields_are_refused_with_400(outbox):
    client = no_500_client()
    before = rows()
    response = client.post("/login/", {f"field{index}": "x" for index in range(1500)})
    assert response.status_code == 400
    assert rows() == before
    assert outbox == []


@pytest.mark.parametrize(
    "next_url",
    ["\x00", "%00", "/" + "a" * 10_000, "http://[::1", "//[", "/\u202eevil", "\r\nSet-Cookie: x=1"],
)
def test_odd_next_values_do_not_break_the_login_page(outbox, next_url):
    client = no_500_client()
    assert client.get("/login/", {"next": next_url}).status_code == 200
    response = client.post(f"/login/?next={next_url}", {"number": NUMBER})
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert "Set-Cookie" not in response["Location"]
    assert "\n" not in response["Location"]


BAD_CODES = [
    "",
    " ",
    "12345",
    "1234567",
    "abcdef",
    "12345a",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
    "123\x00456",
    "\x00",
    "123456\n123456",
    "1" * 21,
    "9" * 10_000,
    "\U0001f600" * 6,
    "<script>",
    "0x1234",
    "1e5000",
    "-12345",
]


@pytest.mark.parametrize("typed", BAD_CODES)
def test_bad_code_is_a_form_error_and_costs_no_attempt(outbox, typed):
    client = no_500_client()
    start_login(client)
    before = {**rows(), "pending": pending(client)}
    response = client.post("/verify/", {"code": typed})
    assert response.status_code == 200
    errors = response.context["form"].errors["code"]
    assert errors
    assert set(errors) <= CODE_ERRORS | {
        f"Ensure this value has at most 20 characters (it has {len(typed.strip())})."
    }
    assert errors[0] in response.content.decode()
    assert {**rows(), "pending": pending(client)} == before
    assert SESSION_KEY not in client.session
    # The right code still works afterwards: nothing was used up.
    assert client.post("/verify/", {"code": last_code(outbox)})["Location"] == "/"


def test_missing_code_field_is_a_form_error(outbox):
    client = no_500_client()
    start_login(client)
    response = client.post("/verify/", {"number": NUMBER})
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == ["Enter the code from the message."]
    assert pending(client)["failed_attempts"] == 0


@pytest.mark.parametrize("path", ["/verify/resend/", "/verify/call/", "/verify/cancel/"])
def test_actions_ignore_unexpected_fields(outbox, path):
    client = no_500_client()
    response = client.post(path, {"number": "\x00" * 100, "code": "x" * 1000})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert outbox == []
    assert User.objects.count() == 0


def test_session_with_a_garbled_pending_verification_starts_over(outbox):
    client = no_500_client()
    start_login(client)
    session = client.session
    session["_pending_verification"] = {"unexpected": "shape"}
    session.save()
    response = client.get("/verify/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert messages_of(client.get("/login/"))[-1] == "Enter your phone number to get a code."
    assert pending(client) is None


def test_tampered_session_cookie_is_anonymous(outbox):
    client = no_500_client()
    client.cookies["sessionid"] = "x" * 40
    assert client.post("/verify/", {"code": "123456"})["Location"] == "/login/"
    client.cookies["sessionid"] = "\x00;,"
    assert client.get("/").status_code == 200


# CSRF -----------------------------------------------------------------------


def csrf_client():
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


def token_from(response):
    return TOKEN.search(response.content.decode())[1]


def assert_csrf_refused(response):
    assert response.status_code == 403
    assert CSRF_PAGE in response.content.decode()


def test_login_without_csrf_token_is_refused_with_403(outbox):
    client = csrf_client()
    client.get("/login/")
    before = rows()
    response = client.post("/login/", {"number": NUMBER})
    assert_csrf_refused(response)
    assert rows() == before
    assert outbox == []


def test_login_with_a_forged_csrf_token_is_refused_with_403(outbox):
    client = csrf_client()
    client.get("/login/")
    before = rows()
    response = client.post("/login/", {"number": NUMBER, "csrfmiddlewaretoken": "forged" * 8})
    assert_csrf_refused(response)
    response = client.post(
        "/login/", {"number": NUMBER, "csrfmiddlewaretoken": "a" * 64}, HTTP_X_CSRFTOKEN="a" * 64
    )
    assert_csrf_refused(response)
    assert rows() == before
    assert outbox == []


def test_login_without_csrf_cookie_is_refused_with_403(outbox):
    client = csrf_client()
    token = token_from(client.get("/login/"))
    client.cookies.clear()
    response = client.post("/login/", {"number": NUMBER, "csrfmiddlewaretoken": token})
    assert_csrf_refused(response)
    assert outbox == []


def test_login_with_the_right_csrf_token_works(outbox):
    client = csrf_client()
    token = token_from(client.get("/login/"))
    response = client.post("/login/", {"number": NUMBER, "csrfmiddlewaretoken": token})
    assert response["Location"] == "/verify/"
    assert len(outbox) == 1


@pytest.fixture
def waiting(outbox):
    """A browser that enforces CSRF, with a code on its way."""
    client = csrf_client()
    token = token_from(client.get("/login/"))
    client.post("/login/", {"number": NUMBER, "csrfmiddlewaretoken": token})
    assert pending(client) is not None
    return client


@pytest.mark.parametrize("forged", [None, "forged" * 8])
@pytest.mark.parametrize(
    "path", ["/verify/", "/verify/resend/", "/verify/call/", "/verify/cancel/"]
)
def test_code_forms_without_a_valid_csrf_token_are_refused(waiting, outbox, path, forged):
    before = {**rows(), "pending": pending(waiting)}
    data = {"code": last_code(outbox)}
    if forged:
        data["csrfmiddlewaretoken"] = forged
    response = waiting.post(path, data)
    assert_csrf_refused(response)
    assert {**rows(), "pending": pending(waiting)} == before
    assert SESSION_KEY not in waiting.session
    assert len(outbox) == 1


def test_logout_without_csrf_token_is_refused(outbox):
    from .factories import UserFactory

    client = csrf_client()
    client.force_login(UserFactory())
    response = client.post("/logout/")
    assert_csrf_refused(response)
    assert SESSION_KEY in client.session


@pytest.mark.parametrize(
    "path",
    ["/login/", "/verify/", "/verify/resend/", "/verify/call/", "/verify/cancel/", "/logout/"],
)
def test_huge_body_on_any_form_is_refused_with_400(waiting, outbox, path):
    """As a browser sends it, token and all: the body is too big to read, nothing happens."""
    token = token_from(waiting.get("/verify/"))
    before = {**rows(), "pending": pending(waiting)}
    response = waiting.post(path, {"csrfmiddlewaretoken": token, "filler": "x" * 3_000_000})
    assert response.status_code == 400
    assert {**rows(), "pending": pending(waiting)} == before
    assert len(outbox) == 1
