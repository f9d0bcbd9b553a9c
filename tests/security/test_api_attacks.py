"""The JSON API: the same attacks, from a script instead of a browser.

The API has no session and no CSRF token: the signed request_id and the
limits the web pages share are all that stand in the way. An attacker mixes
the API and the pages to get around a limit, replays or alters a request_id,
and compares answers for registered and unknown numbers.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.core.cache import cache

from flows.counters import parse_rate

from ..conftest import NUMBER, last_code, pending, start_login
from .conftest import api_endpoints, attacker, compare_timings, logged_in_sessions, wrong_code

pytestmark = pytest.mark.django_db

UNKNOWN = "+14155551200"


def call(browser, name: str, **fields):
    response = browser.post(api_endpoints()[name], fields, content_type="application/json")
    assert response["Content-Type"].startswith("application/json")
    return response


def test_wrong_codes_through_the_api_and_the_pages_share_one_cap(
    settings, outbox, upstream, user, logins, generous_send_limits
):
    limit = parse_rate(settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER).limit
    for attempt in range(60):
        script = attacker()
        if attempt % 2:
            token = call(script, "request", number=NUMBER).json().get("request_id")
            if token:
                call(script, "check", request_id=token, code=wrong_code(last_code(outbox)))
        else:
            start_login(script)
            if pending(script):
                script.post("/verify/", {"code": wrong_code(last_code(outbox))})
    assert upstream.count("check") <= limit
    assert logins == []
    assert logged_in_sessions() == []


def test_an_api_code_works_once(outbox, upstream):
    script = attacker()
    token = call(script, "request", number=NUMBER).json()["request_id"]
    code = last_code(outbox)
    assert call(script, "check", request_id=token, code=code).json()["status"] == "0"
    checks = upstream.count("check")

    replayed = call(attacker(), "check", request_id=token, code=code)
    assert replayed.json()["status"] != "0"
    assert upstream.count("check") == checks


def test_the_request_id_is_not_the_providers_and_cannot_be_altered(outbox, upstream):
    script = attacker()
    answer = call(script, "request", number=NUMBER)
    token = answer.json()["request_id"]
    (upstream_id,) = upstream.issued
    exposed = answer.content.decode() + "".join(f"{k}: {v}" for k, v in answer.items())
    decoded = base64.urlsafe_b64decode(token.split(":")[0] + "==").decode(errors="replace")
    for text in (exposed, decoded):
        assert upstream_id not in text
        assert NUMBER not in text and NUMBER[1:] not in text

    code = last_code(outbox)
    for forged in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token.split(":")[0],
        upstream_id,
        token + ":0",
    ):
        refused = call(script, "check", request_id=forged, code=code)
        assert refused.json()["status"] == "6", forged
    assert upstream.count("check") == 0


@pytest.fixture
def signup_closed(settings, user):
    settings.PASSWORDLESS_SIGNUP = False


def api_transcript(number: str, outbox) -> list:
    """Walk the API flow for `number`; return every answer with its token blanked."""
    script = attacker()
    answers = []

    def keep(response):
        body = response.json()
        if "request_id" in body:
            body["request_id"] = "TOKEN"
        answers.append((response.status_code, json.dumps(body, sort_keys=True)))
        return response

    token = keep(call(script, "request", number=number)).json()["request_id"]
    keep(call(attacker(), "request", number=number))  # a second client, same number
    guess = wrong_code(last_code(outbox))
    for _ in range(2):
        keep(call(script, "check", request_id=token, code=guess))
    keep(call(script, "cancel", request_id=token))
    token = keep(call(script, "request", number=number)).json().get("request_id", "")
    for _ in range(3):
        keep(call(script, "check", request_id=token, code=guess))
    return answers


def test_the_api_answers_registered_and_unknown_numbers_alike(signup_closed, outbox):
    registered = api_transcript(NUMBER, outbox)
    cache.clear()  # the limits start afresh for the second number
    unknown = api_transcript(UNKNOWN, outbox)
    for step, (seen_registered, seen_unknown) in enumerate(zip(registered, unknown, strict=True)):
        same = seen_registered == seen_unknown
        assert same, f"step {step}: registered {seen_registered} vs unknown {seen_unknown}"
    assert {message.number for message in outbox} == {NUMBER}


def time_api_request(number: str) -> float:
    """Return the seconds one POST /api/verify/request takes for `number`, limits reset."""
    cache.clear()
    script = attacker()
    began = time.perf_counter()
    response = call(script, "request", number=number)
    elapsed = time.perf_counter() - began
    assert response.json()["status"] == "0"
    return elapsed


def test_the_api_takes_as_long_for_registered_and_unknown_numbers(signup_closed, outbox, upstream):
    upstream.latency["start"] = 0.05
    registered, unknown, tolerance = compare_timings(time_api_request, NUMBER, UNKNOWN)
    assert abs(registered - unknown) <= tolerance, (
        f"median POST /api/verify/request with a 50 ms provider: registered "
        f"{registered * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms, "
        f"tolerance {tolerance * 1000:.1f} ms"
    )
