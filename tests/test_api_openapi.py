"""The OpenAPI document of the JSON API, held to the letter.

- The document is valid OpenAPI 3.1 and is what /api/openapi.json serves.
- Every response it documents is produced by a real request, and matches it.
- A property-based run (hypothesis) throws bad input at every endpoint: wrong
  methods, content types, bodies, field values, forged tokens, provider
  failures, a moved clock. No answer is a 500, and every answer is one the
  document describes (status code, headers, content type, body schema).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

import verification
from flows.api import flows
from verification.exceptions import (
    ActionNotAllowed,
    ConcurrentVerification,
    IncorrectCode,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    TooManyAttempts,
    VerificationExpired,
)

from .conftest import NUMBER, OTHER_NUMBER, last_code
from .test_api import (
    FORM,
    JSON,
    ORIGIN,
    SPEC,
    ScriptedBackend,
    altered,
    assert_matches_spec,
    start,
    upstream,  # noqa: F401 (the autouse fixture that installs ScriptedBackend)
)

pytestmark = pytest.mark.django_db

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ENDPOINTS = {
    # endpoint: (the backend call it makes, the flow the view runs)
    "request": ("start", "api_verification_request"),
    "check": ("check", "api_verification_check"),
    "cancel": ("cancel", "api_verification_cancel"),
    "next": ("next", "api_verification_next"),
}


def test_the_document_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_the_served_document_is_the_file_in_the_repository(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == SPEC
    assert_matches_spec(response, "GET", "/api/openapi.json")


def test_the_document_describes_exactly_the_api_routes():
    from django.urls import get_resolver

    routes = {
        f"/api/{pattern.pattern}"
        for pattern in get_resolver("flows.api.urls").url_patterns
        if pattern.name != "not_found"
    }
    assert routes == set(SPEC["paths"])


# Every documented response, produced for real ---------------------------------------

DOCUMENTED = [
    (method.upper(), path, int(code))
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    for code in operation["responses"]
]


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def _produce(client, outbox, settings, monkeypatch, clock, method, path, code):
    """Send the request that makes `path` answer `code`."""
    if path == "/api/openapi.json":
        return client.get(path)
    endpoint = path.rsplit("/", 1)[-1]
    call, flow = ENDPOINTS[endpoint]
    if method == "OPTIONS":
        settings.API_CORS_ORIGINS = [ORIGIN] if code == 204 else []
        return client.options(path, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    data = {"number": NUMBER}
    if endpoint != "request":
        token = start(client)
        clock.shift(settings.VERIFY_RESEND_COOLDOWN)
        data = {"request_id": token, "code": last_code(outbox)}
    if code == 403:
        return client.post(
            path, json.dumps(data), content_type=JSON, HTTP_ORIGIN="https://evil.example"
        )
    if code == 400:
        data = {}
    elif code == 429:
        ScriptedBackend.failures[call] = Throttled("throttled")
    elif code == 503:
        ScriptedBackend.failures[call] = ProviderUnavailable("down")
    elif code == 500:

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(flows, flow, broken)
    return client.post(path, json.dumps(data), content_type=JSON)


@pytest.mark.parametrize(("method", "path", "code"), DOCUMENTED)
def test_every_documented_response_is_real_and_matches(
    client, outbox, settings, monkeypatch, clock, method, path, code
):
    response = _produce(client, outbox, settings, monkeypatch, clock, method, path, code)

    assert response.status_code == code, response.content
    assert_matches_spec(response, method, path)


def test_the_undocumented_answers_match_the_shared_responses(client):
    not_found = client.post("/api/verify/nope", "{}", content_type=JSON)
    not_allowed = client.get("/api/verify/check")

    assert not_found.status_code == 404
    assert not_allowed.status_code == 405
    assert_matches_spec(not_found, "POST", "/api/verify/nope")
    assert_matches_spec(not_allowed, "GET", "/api/verify/check")


# The property-based run ---------------------------------------------------------------

SENTINELS = ["$TOKEN", "$ALTERED", "$CODE", "$WRONG_CODE", "$NUMBER", "$OTHER_NUMBER", "$DIGITS"]
FIELDS = ["number", "request_id", "requestId", "code"]
METHODS = ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
CONTENT_TYPES = [
    JSON,
    "application/json; charset=utf-8",
    "Application/JSON",
    FORM,
    "application/x-www-form-urlencoded; charset=utf-8",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "application/xml",
    "application/problem+json",
    "",
]
NASTY_BODIES = [
    b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    b"x" * 5000,
    b'{"number": 1' + b"0" * 4050 + b"}",
    json.dumps({"number": "1" * 5000}).encode(),
    "&".join(f"f{n}=1" for n in range(1500)).encode(),
    b'{"number": NaN, "code": Infinity}',
    b'{"request_id": "\\ud800", "code": "\\u0000"}',
    b'{"request_id": "\\ud800:a:b", "code": "123456", "number": "\\udfff"}',
    b"\xef\xbb\xbf{}",
    b"\x00\x01\x02",
]
# Failures the provider may answer with, on whichever call the example makes.
FAILURES = [
    lambda: ProviderUnavailable("down"),
    lambda: Throttled("throttled"),
    lambda: ActionNotAllowed("not now"),
    lambda: InvalidNumber("no"),
    lambda: ConcurrentVerification("live", request_id="upstream-id"),
    lambda: VerificationExpired("gone"),
    lambda: TooManyAttempts("terminated"),
    lambda: IncorrectCode("wrong", attempts_left=1),
]

# Text with anything JSON can escape in it, lone surrogates included.
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
field_values = (
    st.sampled_from(SENTINELS)
    | json_values
    | st.from_regex(r"\+?[0-9][0-9 ()-]{0,18}", fullmatch=True)
)
objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), field_values, max_size=5)


def _mostly(*valid: str) -> st.SearchStrategy:
    """A field value that is usually one of `valid` (sentinels), sometimes anything."""
    return st.sampled_from(valid) | st.sampled_from(valid) | st.sampled_from(valid) | json_values


# What each path needs, and the sentinels that make each field right, so that
# most bodies get past the input checks to the tokens, limits and provider.
REQUIRED = {
    "request": ["number"],
    "check": ["request_id", "code"],
    "cancel": ["request_id"],
    "next": ["request_id"],
    "openapi.json": [],
}
VALID = {
    "number": ("$NUMBER", "$DIGITS", "$OTHER_NUMBER"),
    "request_id": ("$TOKEN", "$TOKEN", "$ALTERED"),
    "code": ("$CODE", "$CODE", "$WRONG_CODE"),
}


def bodies(endpoint: str) -> st.SearchStrategy:
    required = {name: _mostly(*VALID[name]) for name in REQUIRED[endpoint]}
    optional = {name: _mostly(*VALID[name]) for name in VALID if name not in required}
    well_formed = st.fixed_dictionaries(required, optional=optional)
    return st.one_of(
        st.tuples(st.just("json"), well_formed),
        st.tuples(st.just("json"), well_formed),
        st.tuples(st.just("json"), well_formed),
        st.tuples(st.just("form"), well_formed),
        st.tuples(st.just("json"), objects),
        st.tuples(st.just("form"), objects),
        st.tuples(st.just("json"), json_values),
        st.tuples(st.just("raw"), st.binary(max_size=300)),
        st.tuples(st.just("raw"), st.sampled_from(NASTY_BODIES)),
    )


def _encode(kind: str, payload, values: dict) -> tuple[bytes, str]:
    """Return the body bytes and its natural content type."""
    if isinstance(payload, dict):
        payload = {
            key: values.get(value, value) if isinstance(value, str) else value
            for key, value in payload.items()
        }
    if kind == "json":
        return json.dumps(payload).encode(), JSON
    if kind == "form":
        fields = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in payload.items()
        }
        return urlencode(fields).encode(), FORM
    return payload, "application/octet-stream"


@pytest.mark.parametrize(
    "path", [*(f"/api/verify/{name}" for name in ENDPOINTS), "/api/openapi.json"]
)
@hypothesis_settings(
    max_examples=75,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_input_never_gets_a_500_or_an_answer_outside_the_document(
    path, data, client, user, settings, time_machine
):
    endpoint = path.rsplit("/", 1)[-1]
    # Each example starts clean: no counters, no codes, no scripted failure.
    cache.clear()
    verification.outbox.clear()
    ScriptedBackend.calls, ScriptedBackend.failures = [], {}
    time_machine.move_to(START, tick=False)
    settings.PASSWORDLESS_SIGNUP = data.draw(st.booleans(), label="signup")
    settings.API_CORS_ORIGINS = data.draw(st.sampled_from([[], [ORIGIN]]), label="cors")

    # A live verification (a decoy when sign-up is off and the number unknown),
    # so that a drawn field may name its real token and code.
    number = data.draw(st.sampled_from([NUMBER, OTHER_NUMBER]), label="number")
    token = start(client, number)
    sent = [message.code for message in verification.outbox]
    code = sent[-1] if sent else "123456"
    values = {
        "$TOKEN": token,
        "$ALTERED": altered(token),
        "$CODE": code,
        "$WRONG_CODE": "000000" if code != "000000" else "111111",
        "$NUMBER": number,
        "$OTHER_NUMBER": OTHER_NUMBER if number == NUMBER else NUMBER,
        "$DIGITS": number.removeprefix("+"),
    }
    failure = data.draw(st.none() | st.sampled_from(FAILURES), label="failure")
    if failure is not None:
        call = data.draw(st.sampled_from(["start", "check", "cancel", "next"]), label="call")
        ScriptedBackend.failures[call] = failure()
    time_machine.shift(data.draw(st.sampled_from([0, 0, 31, 301]), label="seconds later"))

    # A few requests in a row: wrong codes add up, a cancel ends a token…
    for _ in range(data.draw(st.integers(1, 3), label="requests")):
        method = data.draw(
            st.just("POST") | st.just("POST") | st.sampled_from(METHODS), label="method"
        )
        kind, payload = data.draw(bodies(endpoint), label="body")
        if isinstance(payload, dict) and "request_id" in payload and data.draw(st.booleans()):
            payload["requestId"] = payload.pop("request_id")
        body, natural_type = _encode(kind, payload, values)
        content_type = data.draw(
            st.just(natural_type) | st.just(natural_type) | st.sampled_from(CONTENT_TYPES),
            label="content type",
        )
        headers = {"CONTENT_TYPE": content_type}
        origin = data.draw(st.sampled_from([None, ORIGIN, "https://evil.example"]), label="origin")
        if origin:
            headers["HTTP_ORIGIN"] = origin
            headers["HTTP_ACCESS_CONTROL_REQUEST_METHOD"] = "POST"

        response = client.generic(method, path, body, content_type=content_type, **headers)

        assert response.status_code != 500, response.content
        assert_matches_spec(response, method, path)
        if response.status_code != 204 and method != "HEAD":
            assert response["Content-Type"] == "application/json"
        # What the run reached (pytest --hypothesis-show-statistics lists it).
        status = json.loads(response.content).get("status") if response.content else None
        event(f"{method} {response.status_code} status={status}")
