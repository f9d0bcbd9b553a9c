"""Open redirects: a login link whose `next` sends the person to the attacker's site.

The phishing mail says "log in here": the link is the real site's login with
`next=` pointing at a look-alike that asks for the code again. Every way of
writing another host, raw or URL-encoded in the value, must end on this site,
after the phone login, the password login and the password-then-code login.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urljoin, urlsplit

import pytest

from ..conftest import NUMBER, last_code, start_login
from ..factories import UserFactory
from .conftest import attacker, page_text

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
SITE = "http://testserver"

ELSEWHERE = [
    "//evil.example",
    "https://evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "///evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "http://testserver@evil.example",
    "https://evil.example/?next=/account/",
    " //evil.example",
    "\t//evil.example",
    "java\nscript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
]
# The same values URL-encoded once more: what a link that was encoded twice carries.
ENCODED = [quote(target, safe="") for target in ELSEWHERE[:4]]


def query(target: str, *, raw: bool) -> str:
    """Return ?next=… carrying `target`, properly encoded or pasted as it is."""
    return f"?next={target}" if raw else f"?next={quote(target, safe='')}"


def assert_on_site(location: str) -> None:
    """Assert that a browser following `location` from this site stays on it."""
    landed = urlsplit(urljoin(f"{SITE}/verify/", location.strip()))
    assert landed.scheme in {"http", "https"}, location
    assert landed.netloc == "testserver", location
    assert "evil.example" not in landed.netloc
    # Browsers treat a backslash as a slash: "/\evil.example" is "//evil.example".
    assert not location.replace("\\", "/").lstrip().startswith("//"), location


LINK = re.compile(r'(?:href|action)="([^"]*)"')


def assert_links_on_site(response) -> None:
    """Assert that every link and form on the page leads to this site."""
    for link in LINK.findall(page_text(response)):
        assert_on_site(html.unescape(link))


TARGETS = [
    pytest.param(target, raw, id=f"{'raw' if raw else 'encoded'}:{target!r}")
    for target in ELSEWHERE + ENCODED
    for raw in (False, True)
]


@pytest.mark.parametrize(("target", "raw"), TARGETS)
def test_next_after_phone_login_stays_on_site(outbox, user, target, raw):
    browser = attacker()
    assert_links_on_site(browser.get(f"/login/{query(target, raw=raw)}"))
    response = browser.post(f"/login/{query(target, raw=raw)}", {"number": NUMBER})
    assert response["Location"] == "/verify/"
    response = browser.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert_on_site(response["Location"])
    assert browser.session.get("_auth_user_id") == str(user.pk)


@pytest.mark.parametrize(("target", "raw"), TARGETS)
def test_next_after_password_login_stays_on_site(target, raw):
    UserFactory(username="bob")
    browser = attacker()
    assert_links_on_site(browser.get(f"/login/password/{query(target, raw=raw)}"))
    response = browser.post(
        f"/login/password/{query(target, raw=raw)}", {"username": "bob", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert_on_site(response["Location"])
    assert browser.session.get("_auth_user_id")


@pytest.mark.parametrize("target", ELSEWHERE + ENCODED)
def test_next_after_password_and_code_stays_on_site(outbox, target):
    UserFactory(username="alice", phone_number_for_2fa=NUMBER, is_2fa_enabled=True)
    browser = attacker()
    response = browser.post(
        f"/login/password/{query(target, raw=False)}", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/verify/"
    response = browser.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert_on_site(response["Location"])
    assert browser.session.get("_auth_user_id")


def test_next_on_this_site_is_honoured(outbox, user):
    """The control: a real on-site `next` is followed, so the checks above can fail."""
    browser = attacker()
    start_login(browser, NUMBER, QUERY_STRING="")
    browser.post("/verify/cancel/")
    browser.post("/login/?next=/account/", {"number": NUMBER})
    response = browser.post("/verify/", {"code": last_code(outbox)})
    assert response["Location"] == "/account/"


@pytest.mark.parametrize("target", ["nowhere", "account", "javascript%3Aalert%281%29"])
def test_a_next_that_is_not_a_path_still_ends_on_site(outbox, user, target):
    """A `next` with no slash or dot is not a URL to Django's redirect(), but a view name."""
    browser = attacker()
    browser.post(f"/login/?next={quote(target, safe='')}", {"number": NUMBER})
    response = browser.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert_on_site(response["Location"])
