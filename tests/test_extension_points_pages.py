"""The pages keep Django's extension points: form templates, i18n URLs, never_cache.

A project that installs this app customises it the way it customises Django:
it overrides the widget templates through FORM_RENDERER, puts its URLs under
i18n_patterns with LocaleMiddleware, and relies on Django's own decorators. Each
test here is such a project, seen through the pages a person gets.
"""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from pathlib import Path

import django.forms
import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import set_script_prefix
from django.views.decorators import cache

from .conftest import NUMBER, OTHER_NUMBER, last_code, start_login

pytestmark = pytest.mark.django_db

# input.html, overridden: Django's own with a data-overridden attribute.
FORM_TEMPLATES = Path(__file__).parent / "form_templates"
DJANGO_FORM_TEMPLATES = Path(django.forms.__file__).parent / "templates"
NEVER_CACHE = {"max-age=0", "no-cache", "no-store", "must-revalidate", "private"}


class Page(HTMLParser):
    """Collect a page's form inputs and the URLs of its links, forms and assets."""

    def __init__(self, html: str):
        super().__init__()
        self.inputs, self.urls = {}, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") != "hidden":
            self.inputs[attrs["name"]] = attrs
        for name in ("href", "action", "src"):
            if attrs.get(name):
                self.urls.append(attrs[name])


def page_of(response) -> Page:
    assert response.status_code == 200, response.status_code
    return Page(response.content.decode())


# FORM_RENDERER --------------------------------------------------------------


@pytest.fixture
def overridden_input(settings):
    """Override django/forms/widgets/input.html as Django's docs say a project does.

    TemplatesSetting renders widgets with the project's TEMPLATES; the test's
    template directory comes before Django's own form templates.
    """
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [*templates[0]["DIRS"], FORM_TEMPLATES, DJANGO_FORM_TEMPLATES]
    settings.TEMPLATES = templates
    settings.FORM_RENDERER = "django.forms.renderers.TemplatesSetting"


def logged_in(client, user):
    user.set_password("an old password 1")
    user.save()
    client.force_login(user)
    return client


PAGES = {
    "phone login": (lambda client, user: client.get("/login/"), {"number"}),
    "phone login, refused": (lambda client, user: start_login(client, "x"), {"number"}),
    "code": (lambda client, user: (start_login(client), client.get("/verify/"))[1], {"code"}),
    "code, refused": (
        lambda client, user: (start_login(client), client.post("/verify/", {"code": "x"}))[1],
        {"code"},
    ),
    "password login": (
        lambda client, user: client.get("/login/password/"),
        {"username", "password"},
    ),
    "password login, refused": (
        lambda client, user: client.post("/login/password/", {"username": "a", "password": ""}),
        {"username", "password"},
    ),
    "new phone": (
        lambda client, user: logged_in(client, user).get("/account/phone/"),
        {"number"},
    ),
    "password": (
        lambda client, user: logged_in(client, user).get("/account/password/"),
        {"old_password", "new_password1", "new_password2"},
    ),
}


@pytest.mark.parametrize(("show", "fields"), PAGES.values(), ids=PAGES.keys())
def test_an_overridden_input_template_shows_on_the_page(
    client, user, outbox, overridden_input, show, fields
):
    inputs = page_of(show(client, user)).inputs
    assert set(inputs) == fields
    for name, attrs in inputs.items():
        assert "data-overridden" in attrs, f"{name} is not drawn by the project's input.html"


def test_the_overridden_input_keeps_what_django_gives_it(client, outbox, overridden_input):
    """The value typed, the label's id and aria-describedby come through the override too."""
    attrs = page_of(start_login(client, "+1 415 555")).inputs["number"]
    assert attrs["value"] == "+1 415 555"
    assert attrs["id"] == "id_number"
    assert attrs["aria-invalid"] == "true"
    assert attrs["aria-describedby"] == "id_number_helptext id_number_error"


# i18n_patterns --------------------------------------------------------------


@pytest.fixture
def i18n_urls(settings):
    """The site under i18n_patterns (tests/i18n_urls.py), in English and French."""
    settings.ROOT_URLCONF = "tests.i18n_urls"
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    middleware = list(settings.MIDDLEWARE)
    sessions = middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    middleware.insert(sessions + 1, "django.middleware.locale.LocaleMiddleware")
    settings.MIDDLEWARE = middleware


def site_urls(page: Page) -> list[str]:
    """Return the page's links and form targets on the site, static files aside."""
    return [url for url in page.urls if url.startswith("/") and not url.startswith("/static/")]


@pytest.mark.parametrize("first", ["en", "fr"])
def test_each_language_links_to_its_own_pages(client, outbox, i18n_urls, first):
    """Whichever language a process served first, every page links within its own."""
    second = {"en": "fr", "fr": "en"}[first]
    for language in (first, second):
        for path in ("/", "/login/", "/login/password/"):
            urls = site_urls(page_of(client.get(f"/{language}{path}")))
            assert urls, path
            assert all(url.startswith(f"/{language}/") for url in urls), (language, path, urls)


def test_the_french_code_page_sends_its_forms_to_french_pages(client, outbox, i18n_urls):
    english = Client()
    english.post("/en/login/", {"number": OTHER_NUMBER})
    assert "/en/verify/resend/" in site_urls(page_of(english.get("/en/verify/")))
    client.post("/fr/login/", {"number": NUMBER})
    urls = site_urls(page_of(client.get("/fr/verify/")))
    assert {"/fr/verify/", "/fr/verify/resend/", "/fr/verify/cancel/"} <= set(urls)
    assert all(url.startswith("/fr/") for url in urls), urls


def test_a_french_login_goes_on_in_french(client, user, outbox, i18n_urls):
    english = Client()
    assert english.post("/en/login/", {"number": OTHER_NUMBER})["Location"] == "/en/verify/"
    assert english.post("/en/verify/cancel/")["Location"] == "/en/login/"

    assert client.get("/fr/verify/")["Location"] == "/fr/login/"
    assert client.post("/fr/login/", {"number": NUMBER})["Location"] == "/fr/verify/"
    response = client.post("/fr/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/fr/"


def test_the_french_admin_login_sends_to_the_french_password_login(client, i18n_urls):
    Client().get("/en/admin/login/")
    response = client.get("/fr/admin/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("/fr/login/password/?next=")


# Script prefix and static files ------------------------------------------------


def test_a_site_under_a_script_prefix_links_under_it(client, settings):
    settings.STATIC_URL = "/static/"
    client.get("/login/")
    # What Django's WSGI handler does with SCRIPT_NAME=/site (the test client does not).
    set_script_prefix("/site/")
    try:
        urls = site_urls(page_of(client.get("/login/")))
    finally:
        set_script_prefix("/")
    assert "/site/login/" in urls
    assert all(url.startswith("/site/") for url in urls), urls


def test_pages_load_their_files_from_static_url(client, settings):
    settings.STATIC_URL = "https://cdn.example.com/assets/"
    urls = page_of(client.get("/login/")).urls
    assert "https://cdn.example.com/assets/css/site.css" in urls
    assert "https://cdn.example.com/assets/js/send-once.js" in urls


# never_cache ----------------------------------------------------------------


@pytest.fixture
def django_never_cache_calls(monkeypatch):
    """Count the responses Django's never_cache decorator marks, and let it mark them."""
    calls = []
    original = cache.add_never_cache_headers

    def add_never_cache_headers(response):
        calls.append(response)
        original(response)

    monkeypatch.setattr(cache, "add_never_cache_headers", add_never_cache_headers)
    return calls


ANSWERS = {
    "phone login": lambda client, user: client.get("/login/"),
    "phone login, sent": lambda client, user: start_login(client),
    "code": lambda client, user: (start_login(client), client.get("/verify/"))[1],
    "code, none pending": lambda client, user: client.get("/verify/"),
    "resend": lambda client, user: (start_login(client), client.post("/verify/resend/"))[1],
    "call": lambda client, user: (start_login(client), client.post("/verify/call/"))[1],
    "cancel": lambda client, user: (start_login(client), client.post("/verify/cancel/"))[1],
    "password login": lambda client, user: client.get("/login/password/"),
    "new phone": lambda client, user: logged_in(client, user).get("/account/phone/"),
    "password": lambda client, user: logged_in(client, user).get("/account/password/"),
    "second factor on": lambda client, user: logged_in(client, user).post("/account/2fa/enable/"),
    "admin login": lambda client, user: client.get("/admin/login/"),
    "API": lambda client, user: client.post(
        "/api/verify/request", {"number": NUMBER}, content_type="application/json"
    ),
    "API, no such path": lambda client, user: client.get("/api/nowhere"),
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_pages_are_never_cached_by_djangos_decorator(
    client, user, outbox, django_never_cache_calls, answer
):
    response = answer(client, user)
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert directives >= NEVER_CACHE
    assert response.has_header("Expires")
    assert response in django_never_cache_calls


# The field template (templates/field.html) --------------------------------


def test_a_typed_value_is_escaped_on_the_page(client, outbox):
    html = start_login(client, '"><script>').content.decode()
    assert 'value="&quot;&gt;&lt;script&gt;"' in html
    assert Page(html).inputs["number"]["value"] == '"><script>'


def test_the_field_template_escapes_the_label_and_the_errors():
    class Hostile(django.forms.Form):
        name = django.forms.CharField(label="<b>Name</b>")

        def clean_name(self):
            raise django.forms.ValidationError("<script>x</script>")

    form = Hostile({"name": "a"})
    form.is_valid()
    html = render_to_string("field.html", {"field": form["name"]})
    assert '<label for="id_name">&lt;b&gt;Name&lt;/b&gt;</label>' in html
    assert '<p class="error">&lt;script&gt;x&lt;/script&gt;</p>' in html
