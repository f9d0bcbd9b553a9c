"""The login pages send exactly the caching headers Django's never_cache writes."""

from email.utils import parsedate_to_datetime

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import resolve
from django.views.decorators.cache import never_cache

from flows import views

from .conftest import start_login

pytestmark = pytest.mark.django_db


def directives(response):
    return {part.strip() for part in response["Cache-Control"].split(",")}


# What Django's never_cache writes on a plain response, written when the page was.
def djangos_headers():
    response = never_cache(lambda request: HttpResponse("page"))(RequestFactory().get("/"))
    return directives(response), parsedate_to_datetime(response["Expires"])


ANSWERS = {
    "phone login": lambda client: client.get("/login/"),
    "phone login, refused": lambda client: start_login(client, "x"),
    "phone login, sent": lambda client: start_login(client),
    "code": lambda client: (start_login(client), client.get("/verify/"))[1],
    "code, wrong": lambda client: (start_login(client), client.post("/verify/", {"code": "1"}))[1],
    "code, none pending": lambda client: client.get("/verify/"),
    "resend": lambda client: (start_login(client), client.post("/verify/resend/"))[1],
    "cancel": lambda client: (start_login(client), client.post("/verify/cancel/"))[1],
    "password login": lambda client: client.get("/login/password/"),
    "new phone, logged out": lambda client: client.get("/account/phone/"),
    "password, logged out": lambda client: client.get("/account/password/"),
    "admin login": lambda client: client.get("/admin/login/"),
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_each_page_sends_what_djangos_never_cache_writes(client, outbox, answer):
    response = answer(client)
    expected, expires = djangos_headers()
    assert directives(response) == expected
    assert abs((parsedate_to_datetime(response["Expires"]) - expires).total_seconds()) <= 1


def test_the_login_pages_are_still_their_classes():
    assert resolve("/login/").func.view_class is views.PhoneLoginView
    assert resolve("/verify/").func.view_class is views.VerifyView
