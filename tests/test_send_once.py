"""The forms that send a code load static/js/send-once.js, which a strict CSP allows.

The script (progressive enhancement) disables a form's button after its first
submit, so a double click sends one request; it runs in a browser, so these
tests check what the pages give it: the script from the site's static files,
with no inline code the Content-Security-Policy would block, and every form
that sends a code marked for it.
"""

from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

from .conftest import start_login
from .factories import UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = "js/send-once.js"


class Page(HTMLParser):
    """The scripts and forms of a page."""

    def __init__(self, html):
        super().__init__()
        self.scripts, self.forms, self._script, self._form = [], [], None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._script = {"attrs": attrs, "text": ""}
            self.scripts.append(self._script)
        elif tag == "form":
            self._form = {"attrs": attrs, "buttons": []}
            self.forms.append(self._form)
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._script is not None:
            self._script["text"] += data


def page_of(response):
    assert response.status_code == 200
    return Page(response.content.decode())


def sending_forms(page):
    """Return the actions of the forms marked to be sent once, with their buttons' labels."""
    return {
        form["attrs"]["action"]: [button.get("data-sending-label") for button in form["buttons"]]
        for form in page.forms
        if "data-send-once" in form["attrs"]
    }


def test_the_login_page_loads_the_script_as_a_file_the_csp_allows(client):
    response = client.get("/login/")

    page = page_of(response)
    scripts = [script["attrs"] for script in page.scripts]
    assert {"src": static(SCRIPT), "defer": None} in scripts
    # 'self' only, no 'unsafe-inline': every script must be a file on the site.
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    for script in page.scripts:
        assert script["attrs"]["src"].startswith(static("")), script
        assert script["text"].strip() == "", "inline script"
    assert finders.find(SCRIPT) is not None


def test_the_number_form_is_sent_once_and_says_so(client):
    page = page_of(client.get("/login/"))

    assert sending_forms(page) == {"/login/": ["Sending…"]}


def test_the_password_form_is_sent_once(client):
    page = page_of(client.get("/login/password/"))

    assert sending_forms(page) == {"/login/password/": ["Logging in…"]}
    assert {"src": static(SCRIPT), "defer": None} in [s["attrs"] for s in page.scripts]


def test_the_code_resend_and_call_forms_are_sent_once(client, user, settings):
    settings.VERIFY_RESEND_COOLDOWN = 0
    start_login(client)

    page = page_of(client.get("/verify/"))

    assert sending_forms(page) == {
        "/verify/": ["Checking…"],
        "/verify/resend/": ["Sending…"],
        "/verify/call/": ["Calling…"],
    }
    scripts = [script["attrs"]["src"] for script in page.scripts]
    assert scripts == [static("js/resend-countdown.js"), static(SCRIPT)]


def test_the_forms_that_send_a_step_up_code_are_sent_once(client):
    user = UserFactory(phone_number_for_2fa="+14155550100")
    client.force_login(user)

    phone = page_of(client.get("/account/phone/"))
    account = page_of(client.get("/account/"))

    assert sending_forms(phone) == {"/account/phone/": ["Sending…"]}
    assert sending_forms(account)["/account/phone/remove/"] == ["Sending a code…"]
    assert {"src": static(SCRIPT), "defer": None} in [s["attrs"] for s in account.scripts]
