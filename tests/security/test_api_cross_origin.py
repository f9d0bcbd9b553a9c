"""Cross-site requests to the JSON API: another site makes its visitors' browsers ask for codes.

The API is exempt from CSRF and takes form-encoded bodies (the published
mobile samples send them). A form POST is a "simple" request: a page on any
site can make a browser send it without a preflight, and although that page
cannot read the answer, the code would go out, at the site's cost and to a
number of the attacker's choosing, from every visitor's address. Browsers
say where such a request comes from (Origin, Sec-Fetch-Site); native apps
send neither. So: a request a browser marks as coming from another origin is
refused with nothing sent or counted, unless API_CORS_ORIGINS names it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from verificationlog.models import VerificationLog

from ..conftest import NUMBER, OTHER_NUMBER, last_code
from .conftest import api_endpoints, attacker

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
EVIL = "https://evil.example"
APP = "https://app.example.com"
# The test client's own origin (Host "testserver", plain HTTP).
OWN = "http://testserver"


def post_form(
    browser,
    name: str,
    *,
    origin: str | None = None,
    fetch_site: str | None = None,
    secure: bool = False,
    **fields,
):
    """POST a form-encoded body to an API endpoint, as a browser page (or an app) would."""
    headers = {"secure": secure}
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    if fetch_site is not None:
        headers["HTTP_SEC_FETCH_SITE"] = fetch_site
    return browser.post(api_endpoints()[name], urlencode(fields), content_type=FORM, **headers)


def assert_refused(response) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["status"] == "3"
    assert "Cross-origin request refused" in response.json()["error_text"]
    assert not response.has_header("Access-Control-Allow-Origin")


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [
        (EVIL, None),
        (EVIL, "cross-site"),
        # A sibling subdomain is another site for us: it may be anyone's.
        ("https://blog.testserver", "same-site"),
        # Sandboxed frames and data: URLs send the opaque origin "null".
        ("null", "cross-site"),
        # The site's own host on another scheme is another origin.
        ("https://testserver", None),
    ],
)
def test_a_form_post_from_another_origin_sends_nothing(outbox, upstream, origin, fetch_site):
    response = post_form(attacker(), "request", origin=origin, fetch_site=fetch_site, number=NUMBER)

    assert_refused(response)
    assert outbox == []
    assert upstream.calls == []
    assert not VerificationLog.objects.exists()


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "Cross-Site"])
def test_a_foreign_fetch_without_origin_is_refused(outbox, upstream, fetch_site):
    response = post_form(attacker(), "request", fetch_site=fetch_site, number=NUMBER)

    assert_refused(response)
    assert outbox == []
    assert upstream.calls == []


def test_refused_requests_count_against_no_limit(settings, outbox, upstream):
    settings.VERIFY_RATE_START_PER_IP = "2/h"
    victim = attacker()  # the visitor whose browser the foreign page drives

    for _ in range(5):
        assert_refused(post_form(victim, "request", origin=EVIL, number=NUMBER))

    # The visitor's own app, from the same address, still has its whole allowance.
    assert post_form(victim, "request", number=NUMBER).status_code == 200
    assert post_form(victim, "request", number=OTHER_NUMBER).status_code == 200
    assert [message.number for message in outbox] == [NUMBER, OTHER_NUMBER]


def test_every_endpoint_refuses_another_origin(outbox, upstream):
    app = attacker()
    token = post_form(app, "request", number=NUMBER).json()["request_id"]
    code = last_code(outbox)

    for name in ("check", "next", "cancel"):
        assert_refused(post_form(app, name, origin=EVIL, request_id=token, code=code))
    assert upstream.count("check") == upstream.count("cancel") == upstream.count("next") == 0

    # The refused check cost nothing: the code still works, once.
    response = post_form(app, "check", request_id=token, code=code)
    assert response.json()["status"] == "0"


def test_a_native_app_form_post_works(outbox):
    response = post_form(attacker(), "request", number=NUMBER)

    assert response.status_code == 200
    assert response.json()["status"] == "0"
    assert outbox[-1].number == NUMBER


def test_an_origin_in_api_cors_origins_works(settings, outbox):
    settings.API_CORS_ORIGINS = [APP]

    response = post_form(attacker(), "request", origin=APP, fetch_site="cross-site", number=NUMBER)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert outbox[-1].number == NUMBER


def test_a_listed_sibling_subdomain_works(settings, outbox):
    settings.API_CORS_ORIGINS = ["https://app.testserver"]

    response = post_form(
        attacker(),
        "request",
        origin="https://app.testserver",
        fetch_site="same-site",
        number=NUMBER,
    )

    assert response.status_code == 200
    assert outbox[-1].number == NUMBER


@pytest.mark.parametrize("fetch_site", [None, "same-origin"])
def test_the_sites_own_origin_works(outbox, fetch_site):
    response = post_form(attacker(), "request", origin=OWN, fetch_site=fetch_site, number=NUMBER)

    assert response.status_code == 200
    assert outbox[-1].number == NUMBER


def test_the_sites_own_origin_over_https_works(outbox):
    response = post_form(
        attacker(),
        "request",
        origin="https://testserver",
        fetch_site="same-origin",
        secure=True,
        number=NUMBER,
    )

    assert response.status_code == 200
    assert outbox[-1].number == NUMBER
