"""Caching: a page for a logged-in person stays out of every cache.

On a shared computer, the next person must not find the last one's account
page in the browser's cache, and the back button after logout must not show
it again; a proxy must not keep it either. Every answer to a logged-in person
says `Cache-Control: no-store`, whichever view made it (ASVS 8.2.1).
Anonymous pages and static files keep caching as before.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils.cache import get_max_age

from accounts.urls import urlpatterns as account_urlpatterns
from flows.urls import urlpatterns as flow_urlpatterns

from ..conftest import NUMBER, pending
from ..factories import UserFactory
from .conftest import attacker

pytestmark = pytest.mark.django_db

NEW_NUMBER = "+14155550123"


def no_store(response) -> bool:
    directives = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


def logged_in(user):
    browser = attacker()
    browser.force_login(user)
    return browser


@pytest.fixture
def staff():
    return UserFactory(phone_number_for_2fa=NUMBER, is_staff=True, is_superuser=True)


def site_pages() -> list[str]:
    """Return the path of every page of the site that takes no argument."""
    return [
        "/",
        *(reverse(f"flows:{pattern.name}") for pattern in flow_urlpatterns),
        *(reverse(f"accounts:{pattern.name}") for pattern in account_urlpatterns),
    ]


def admin_pages(staff) -> list[str]:
    """Return the admin's index, every registered model's list, and a person's own page."""
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        pages.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    pages.append(reverse("admin:accounts_user_change", args=[staff.pk]))
    return pages


@pytest.mark.parametrize(
    "path", ["/", "/account/", "/account/phone/", "/account/password/", "/no-such-page/"]
)
def test_a_page_for_a_logged_in_person_is_never_stored(user, path):
    response = logged_in(user).get(path)

    assert response.status_code in {200, 404}
    assert no_store(response), f"{path}: Cache-Control {response.get('Cache-Control')!r}"


def test_every_page_and_answer_for_a_logged_in_person_is_never_stored(user, outbox):
    """Every route, whatever it answers (a page, a redirect, 405 for a GET)."""
    browser = logged_in(user)
    answers = {path: browser.get(path) for path in site_pages()}
    browser.post("/account/phone/", {"number": NEW_NUMBER})
    assert pending(browser)
    answers["/verify/ (a code on its way)"] = browser.get("/verify/")

    stored = {
        path: response.get("Cache-Control")
        for path, response in answers.items()
        if not no_store(response)
    }
    assert stored == {}


def test_every_admin_page_for_staff_is_never_stored(staff):
    browser = logged_in(staff)

    stored = {}
    for path in admin_pages(staff):
        response = browser.get(path)
        assert response.status_code == 200, path
        if not no_store(response):
            stored[path] = response.get("Cache-Control")
    assert stored == {}


def test_anonymous_pages_and_static_files_cache_as_before():
    visitor = attacker()

    home = visitor.get("/")
    document = visitor.get("/api/openapi.json")
    stylesheet = visitor.get("/static/css/site.css")

    assert home.status_code == 200
    assert not no_store(home)
    assert not home.has_header("Cache-Control")
    # Nothing read the session for the API's document: its answer does not vary on cookies.
    assert not no_store(document)
    assert "Cookie" not in document.get("Vary", "")
    assert stylesheet.status_code == 200
    assert get_max_age(stylesheet) > 0
    assert "public" in stylesheet["Cache-Control"]
