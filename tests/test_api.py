"""The JSON verification API (/api/verify/…): every success and error path, through locmem.

Every response these tests receive is also checked against the OpenAPI
document (flows/api/openapi.json) by `api()`: the spec is held to the letter
on every path, not only in tests/test_api_openapi.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import ClassVar

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import signing
from django.test import Client
from jsonschema import Draft202012Validator

from accounts.models import User
from flows import process
from flows.api import flows, tokens
from verification.backends.locmem import VerificationBackend as LocmemBackend
from verification.exceptions import (
    ActionNotAllowed,
    InvalidNumber,
    ProviderUnavailable,
    Throttled,
    VerificationExpired,
)

from .conftest import NUMBER, OTHER_NUMBER, last_code, start_login
from .factories import UserFactory

pytestmark = pytest.mark.django_db

SPEC_PATH = Path(__file__).resolve().parent.parent / "flows" / "api" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
TOKEN_PATTERN = re.compile(SPEC["components"]["schemas"]["RequestId"]["pattern"])
ORIGIN = "https://app.example.com"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


# The OpenAPI document, applied to real responses ---------------------------


def _resolve(item: dict) -> dict:
    while "$ref" in item:
        kind, name = item["$ref"].split("/")[-2:]
        item = SPEC["components"][kind][name]
    return item


def _validate(instance, schema: dict) -> list[str]:
    # The document's "#/components/…" references resolve against the root.
    validator = Draft202012Validator({**schema, "components": SPEC["components"]})
    return [error.message for error in validator.iter_errors(instance)]


def documented_response(method: str, path: str, status_code: int) -> dict | None:
    """Return the document's response for this answer, or None when it documents none."""
    path_item = SPEC["paths"].get(path)
    if path_item is None:
        expected, response = 404, SPEC["components"]["responses"]["NotFound"]
    elif method.lower() not in path_item:
        expected, response = 405, SPEC["components"]["responses"]["MethodNotAllowed"]
    else:
        responses = path_item[method.lower()]["responses"]
        response = responses.get(str(status_code))
        return _resolve(response) if response else None
    return response if status_code == expected else None


def assert_matches_spec(response, method: str, path: str) -> None:
    """Fail unless the document describes `response` exactly: code, headers, body."""
    documented = documented_response(method, path, response.status_code)
    assert documented is not None, (
        f"{method} {path} answered {response.status_code}, which the document does not list"
    )
    for name, header in documented.get("headers", {}).items():
        header = _resolve(header)
        if header.get("required"):
            assert response.has_header(name), f"{method} {path}: header {name} missing"
        if response.has_header(name):
            value = response[name]
            if header["schema"].get("type") == "integer":
                assert value.isdigit(), f"{name}: {value!r} is not an integer"
                value = int(value)
            assert not _validate(value, header["schema"]), f"{name}: {value!r}"
    content = documented.get("content")
    if not content:
        assert response.content == b""
        return
    media_type = response["Content-Type"].split(";")[0].strip()
    assert media_type in content, f"{method} {path}: {media_type} is not documented"
    if method.upper() == "HEAD":
        return  # no body to check
    body = json.loads(response.content)
    errors = _validate(body, content[media_type]["schema"])
    assert not errors, f"{method} {path} {response.status_code}: {body} -> {errors}"


# A backend that records calls and fails on request ---------------------------


class ScriptedBackend(LocmemBackend):
    """The locmem backend, recording every call; a test can make the next call of a kind fail."""

    calls: ClassVar[list[tuple[str, str]]] = []
    failures: ClassVar[dict[str, Exception]] = {}
    check_extra: ClassVar[dict] = {}
    started: ClassVar[list[str]] = []

    def _call(self, name: str, argument: str) -> None:
        type(self).calls.append((name, argument))
        failure = type(self).failures.pop(name, None)
        if failure is not None:
            raise failure

    def start(self, number):
        self._call("start", number)
        request_id = super().start(number)
        type(self).started.append(request_id)
        return request_id

    def check(self, request_id, code):
        self._call("check", request_id)
        result = super().check(request_id, code)
        return dataclasses.replace(result, **type(self).check_extra)

    def cancel(self, request_id):
        self._call("cancel", request_id)
        return super().cancel(request_id)

    def trigger_next(self, request_id):
        self._call("next", request_id)
        return super().trigger_next(request_id)

    @classmethod
    def calls_of(cls, name: str) -> list[str]:
        return [argument for call, argument in cls.calls if call == name]


@pytest.fixture(autouse=True)
def upstream(settings):
    """The provider, as the API sees it: `upstream.calls`, `upstream.failures`."""
    settings.VERIFICATION_BACKEND = f"{__name__}.ScriptedBackend"
    ScriptedBackend.calls = []
    ScriptedBackend.failures = {}
    ScriptedBackend.check_extra = {}
    ScriptedBackend.started = []
    return ScriptedBackend


# Helpers ---------------------------------------------------------------------


def api(client, endpoint: str, data=None, *, method="POST", content_type=JSON, **extra):
    """Call /api/verify/<endpoint> (or /api/<endpoint> when it has a dot or slash)."""
    path = f"/api/{endpoint}" if "." in endpoint or "/" in endpoint else f"/api/verify/{endpoint}"
    if isinstance(data, bytes):
        body = data
    elif data is None:
        body = b""
    elif content_type == FORM:
        from urllib.parse import urlencode

        body = urlencode(data).encode()
    else:
        body = json.dumps(data).encode()
    # Set the header even for an empty body, as a real client does.
    extra.setdefault("CONTENT_TYPE", content_type)
    response = client.generic(method, path, body, content_type=content_type, **extra)
    assert_matches_spec(response, method, path)
    return response


def start(client, number=NUMBER) -> str:
    response = api(client, "request", {"number": number})
    assert response.status_code == 200, response.content
    return response.json()["request_id"]


def refused(response, http_status: int, status: str) -> dict:
    assert response.status_code == http_status, response.content
    assert response["Content-Type"] == JSON
    body = response.json()
    assert body["status"] == status, body
    return body


def wrong_code(outbox, number=NUMBER) -> str:
    """Return a well-formed code that is not the one last sent to `number`."""
    return "000000" if last_code(outbox, number) != "000000" else "111111"


def altered(token: str) -> str:
    """Return `token` with one character of its handle changed."""
    first = "A" if token[0] != "A" else "B"
    return first + token[1:]


# /api/verify/request -----------------------------------------------------------


def test_request_sends_a_code_and_answers_an_opaque_token(client, outbox, upstream):
    response = api(client, "request", {"number": "14155550100"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "0"
    assert set(body) == {"request_id", "status"}
    assert TOKEN_PATTERN.match(body["request_id"])
    assert [message.number for message in outbox] == [NUMBER]
    assert upstream.calls_of("start") == [NUMBER]
    # Neither the upstream request id nor the number is in the answer.
    assert upstream.started[0] not in response.content.decode()
    assert "4155550100" not in body["request_id"]


@pytest.mark.parametrize(
    "number",
    ["14155550100", 14155550100, "+14155550100", "+1 415 555 0100", "1 (415) 555-0100"],
    ids=["digits", "json-number", "e164", "spaced", "punctuated"],
)
def test_request_takes_the_number_as_string_or_json_number_plus_optional(client, outbox, number):
    response = api(client, "request", {"number": number})

    assert response.status_code == 200
    assert outbox[-1].number == NUMBER


def test_request_takes_a_form_encoded_body(client, outbox):
    response = api(client, "request", {"number": "14155550100"}, content_type=FORM)

    assert response.status_code == 200
    assert outbox[-1].number == NUMBER


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("123", "3"),
        ("not a number", "3"),
        ("999999999999", "3"),
        ("1" * 40, "3"),
        (True, "3"),
        (1.5, "3"),
        ([NUMBER], "3"),
        ({"number": NUMBER}, "3"),
        ("", "2"),
        (None, "2"),
        ("   ", "2"),
    ],
)
def test_request_refuses_a_bad_number_and_sends_nothing(client, outbox, upstream, number, status):
    body = refused(api(client, "request", {"number": number}), 400, status)

    assert "number" in body["error_text"]
    assert outbox == []
    assert upstream.calls == []


def test_request_without_a_number_is_status_2(client, outbox):
    body = refused(api(client, "request", {"brand": "x"}), 400, "2")

    assert body["error_text"] == "Missing mandatory field: number"
    assert outbox == []


def test_a_second_request_for_a_live_number_gets_a_token_for_it(client, outbox):
    first = start(client)
    second = start(client)

    assert second != first
    assert len(outbox) == 1
    code = last_code(outbox)
    response = api(client, "check", {"request_id": second, "code": code})
    assert response.json()["status"] == "0"
    # One request, so one success: the first token's check finds it over.
    refused(api(client, "check", {"request_id": first, "code": code}), 400, "6")


def test_a_live_request_for_another_step_is_concurrent(client, outbox, user):
    client.force_login(user)
    client.post("/account/2fa/disable/")

    body = refused(api(client, "request", {"number": NUMBER}), 400, "10")

    assert body["error_text"] == "Concurrent verifications to the same number are not allowed"
    assert len(outbox) == 1


@pytest.mark.parametrize(
    ("status", "text"),
    [
        ("3", "Invalid value for param: number"),
        ("7", "The number is blocked for verification"),
        ("15", "The destination number is not in a supported network"),
        ("29", "Non-permitted destination"),
        ("99", "Invalid value for param: number"),
    ],
)
def test_a_number_the_provider_refuses_keeps_its_v1_status(client, upstream, status, text):
    exc = InvalidNumber("upstream says: no")
    exc.status = status

    upstream.failures["start"] = exc
    body = refused(
        api(client, "request", {"number": NUMBER}), 400, status if status != "99" else "3"
    )

    assert body["error_text"] == text


def test_request_when_the_provider_is_down_is_503_in_our_words(client, upstream):
    upstream.failures["start"] = ProviderUnavailable("secret upstream text with api_key=abc")

    response = api(client, "request", {"number": NUMBER})

    body = refused(response, 503, "5")
    assert body["error_text"] == (
        "The verification service is temporarily unavailable: try again later"
    )
    assert b"secret upstream" not in response.content
    assert b"api_key" not in response.content


def test_request_throttled_by_the_provider_is_429_with_retry_after(client, upstream):
    upstream.failures["start"] = Throttled("throttled")

    response = api(client, "request", {"number": NUMBER})

    refused(response, 429, "1")
    assert response["Retry-After"] == "1"


def test_request_limit_per_number(client, outbox, settings):
    # Three codes to one number in 15 minutes (the default), then 429.
    for _ in range(3):
        token = start(client)
        api(client, "cancel", {"request_id": token})

    response = api(client, "request", {"number": NUMBER})

    body = refused(response, 429, "1")
    assert int(response["Retry-After"]) > 0
    assert body["error_text"].startswith("Throttled: too many attempts")
    assert len(outbox) == 3


def test_request_limit_per_ip(client, outbox):
    numbers = [f"+1415555{n:04d}" for n in range(1, 7)]
    for number in numbers[:5]:
        start(client, number)

    response = api(client, "request", {"number": numbers[5]})

    refused(response, 429, "1")
    assert len(outbox) == 5
    # Another client is not affected.
    assert start(Client(REMOTE_ADDR="203.0.113.9"), numbers[5])


def test_web_and_api_share_the_start_counters_for_a_number(client, outbox):
    for _ in range(3):
        start_login(client)
        client.post("/verify/cancel/")
    assert len(outbox) == 3

    response = api(Client(REMOTE_ADDR="203.0.113.9"), "request", {"number": NUMBER})

    refused(response, 429, "1")
    assert response.has_header("Retry-After")
    assert len(outbox) == 3


def test_api_starts_count_for_the_web_login_too(client, outbox):
    for _ in range(3):
        api(client, "cancel", {"request_id": start(client)})

    response = start_login(Client(REMOTE_ADDR="203.0.113.9"))

    assert response.status_code == 429
    assert len(outbox) == 3


def test_request_honours_the_sites_country_allowlist(client, outbox, settings):
    settings.VERIFY_ALLOWED_COUNTRIES = ["GB"]

    refused(api(client, "request", {"number": NUMBER}), 400, "3")

    assert outbox == []


def test_request_when_the_site_wide_cap_is_reached_is_503(client, outbox, settings):
    settings.VERIFY_MAX_SENDS_PER_HOUR = 1
    start(client)

    refused(api(client, "request", {"number": OTHER_NUMBER}), 503, "5")

    assert len(outbox) == 1


# /api/verify/check ----------------------------------------------------------------


def test_check_with_the_right_code(client, outbox, upstream):
    token = start(client)

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert response.status_code == 200
    assert response.json() == {
        "request_id": token,
        "status": "0",
        "event_id": None,
        "price": None,
        "currency": None,
    }
    assert upstream.calls_of("check") == upstream.started


def test_check_reports_what_the_backend_knows(client, outbox, upstream):
    upstream.check_extra = {
        "event_id": "0A00000012345678",
        "price": "0.10000000",
        "currency": "EUR",
    }
    token = start(client)

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert response.json()["event_id"] == "0A00000012345678"
    assert response.json()["price"] == "0.10000000"
    assert response.json()["currency"] == "EUR"


def test_a_successful_check_logs_nobody_in(client, outbox):
    users_before = User.objects.count()
    token = start(client)

    api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert SESSION_KEY not in client.session
    assert User.objects.count() == users_before
    assert "Hello" not in client.get("/").content.decode()


def test_a_used_token_is_refused_without_asking_the_provider(client, outbox, upstream):
    token = start(client)
    code = last_code(outbox)
    api(client, "check", {"request_id": token, "code": code})

    body = refused(api(client, "check", {"request_id": token, "code": code}), 400, "6")

    assert "request_id" in body["error_text"]
    assert len(upstream.calls_of("check")) == 1


def test_check_takes_request_id_as_requestId(client, outbox):
    token = start(client)

    response = api(client, "check", {"requestId": token, "code": last_code(outbox)})

    assert response.status_code == 200
    assert response.json()["request_id"] == token


def test_check_takes_a_form_encoded_body(client, outbox):
    token = start(client)

    response = api(
        client, "check", {"request_id": token, "code": last_code(outbox)}, content_type=FORM
    )

    assert response.status_code == 200


def test_check_ignores_spaces_in_the_code(client, outbox):
    token = start(client)
    code = last_code(outbox)

    response = api(client, "check", {"request_id": token, "code": f"{code[:3]} {code[3:]}"})

    assert response.status_code == 200


def test_wrong_codes_then_the_request_is_over(client, outbox, upstream):
    token = start(client)
    wrong = wrong_code(outbox)

    first = refused(api(client, "check", {"request_id": token, "code": wrong}), 400, "16")
    refused(api(client, "check", {"request_id": token, "code": wrong}), 400, "16")
    third = refused(api(client, "check", {"request_id": token, "code": wrong}), 400, "17")
    after = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert first["error_text"] == "The code provided does not match the expected value"
    assert third["error_text"] == "The wrong code was provided too many times. Request terminated"
    refused(after, 400, "6")
    assert len(upstream.calls_of("check")) == 3


def test_a_wrong_code_keeps_the_token_for_another_try(client, outbox):
    token = start(client)
    api(client, "check", {"request_id": token, "code": wrong_code(outbox)})

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "code",
    ["abcdef", "12345", "1234567", 123456, ["123456"], "\uff11\uff12\uff13\uff14\uff15\uff16"],
)
def test_a_code_of_the_wrong_shape_costs_nothing(client, outbox, upstream, code):
    token = start(client)

    refused(api(client, "check", {"request_id": token, "code": code}), 400, "3")

    assert upstream.calls_of("check") == []
    assert api(client, "check", {"request_id": token, "code": last_code(outbox)}).status_code == 200


@pytest.mark.parametrize(
    ("data", "field"),
    [({"code": "123456"}, "request_id"), ({"request_id": "x"}, "code"), ({}, "request_id")],
)
def test_check_without_a_field_is_status_2(client, data, field):
    body = refused(api(client, "check", data), 400, "2")

    assert body["error_text"] == f"Missing mandatory field: {field}"


def test_check_when_the_provider_is_down_keeps_the_token(client, outbox, upstream):
    token = start(client)
    upstream.failures["check"] = ProviderUnavailable("timeout")

    refused(api(client, "check", {"request_id": token, "code": last_code(outbox)}), 503, "5")

    assert api(client, "check", {"request_id": token, "code": last_code(outbox)}).status_code == 200


def test_check_throttled_by_the_provider_is_429(client, outbox, upstream):
    token = start(client)
    upstream.failures["check"] = Throttled("throttled")

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    refused(response, 429, "1")
    assert response.has_header("Retry-After")


def test_check_of_a_request_the_provider_ended_is_6_and_forgets_the_token(client, outbox, upstream):
    token = start(client)
    upstream.failures["check"] = VerificationExpired("gone")
    refused(api(client, "check", {"request_id": token, "code": last_code(outbox)}), 400, "6")

    refused(api(client, "check", {"request_id": token, "code": last_code(outbox)}), 400, "6")

    assert len(upstream.calls_of("check")) == 1


# The token rules ---------------------------------------------------------------


FORGERIES = [
    "garbage",
    "empty-signature",
    "altered-handle",
    "altered-signature",
    "other-key",
    "other-salt",
    "unknown-handle",
    "too-long",
]


def _forged_tokens(token: str) -> dict[str, str]:
    handle = token.split(":")[0]
    return {
        "garbage": "not-a-token",
        "empty-signature": f"{handle}:xxxx:",
        "altered-handle": altered(token),
        "altered-signature": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "other-key": signing.TimestampSigner(key="another-key", salt=tokens.SALT).sign(handle),
        "other-salt": signing.TimestampSigner(salt="another.salt").sign(handle),
        "unknown-handle": signing.TimestampSigner(salt=tokens.SALT).sign("no-such-handle"),
        "too-long": token + "A" * 300,
    }


@pytest.mark.parametrize("kind", FORGERIES)
@pytest.mark.parametrize("endpoint", ["check", "cancel", "next"])
def test_a_forged_or_altered_token_is_6_and_the_provider_is_not_called(
    client, outbox, upstream, kind, endpoint
):
    token = start(client)
    forged = _forged_tokens(token)[kind]

    body = refused(
        api(client, endpoint, {"request_id": forged, "code": last_code(outbox)}), 400, "6"
    )

    assert body["error_text"] == (
        "The request_id is unknown, expired, already verified or cancelled: request a new code"
    )
    assert [call for call, _ in upstream.calls] == ["start"]
    assert len(outbox) == 1


def test_a_token_works_until_just_before_the_ttl(client, outbox, time_machine, settings):
    time_machine.move_to("2030-01-01 12:00:00+00:00", tick=False)
    token = start(client)
    time_machine.shift(settings.VERIFY_CODE_TTL - 1)

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ["check", "cancel", "next"])
def test_an_expired_token_is_6_and_the_provider_is_not_called(
    client, outbox, upstream, time_machine, settings, endpoint
):
    time_machine.move_to("2030-01-01 12:00:00+00:00", tick=False)
    token = start(client)
    time_machine.shift(settings.VERIFY_CODE_TTL + 1)

    refused(api(client, endpoint, {"request_id": token, "code": last_code(outbox)}), 400, "6")

    assert upstream.calls_of(endpoint) == []


def test_the_signature_age_alone_refuses_an_old_token(
    client, outbox, upstream, time_machine, settings
):
    # The record is still in the cache (kept 300 s); the token is older than
    # the TTL now in force, and that is enough.
    time_machine.move_to("2030-01-01 12:00:00+00:00", tick=False)
    token = start(client)
    settings.VERIFY_CODE_TTL = 60
    time_machine.shift(61)

    refused(api(client, "check", {"request_id": token, "code": last_code(outbox)}), 400, "6")

    assert upstream.calls_of("check") == []


@pytest.mark.parametrize("endpoint", ["check", "cancel", "next"])
def test_a_token_for_another_number_is_refused(client, outbox, upstream, endpoint):
    token = start(client)

    body = refused(
        api(
            client,
            endpoint,
            {"request_id": token, "code": last_code(outbox), "number": OTHER_NUMBER},
        ),
        400,
        "6",
    )

    assert body["error_text"] == "The request_id was issued for another number"
    assert [call for call, _ in upstream.calls] == ["start"]


def test_a_token_with_its_own_number_in_any_format_is_accepted(client, outbox):
    token = start(client)

    response = api(
        client, "check", {"request_id": token, "code": last_code(outbox), "number": 14155550100}
    )

    assert response.status_code == 200


def test_a_token_is_not_valid_for_another_numbers_request(client, outbox, upstream):
    # Two live requests: the code sent to one number does not work with the
    # other number's token.
    token = start(client, NUMBER)
    start(client, OTHER_NUMBER)

    response = api(client, "check", {"request_id": token, "code": last_code(outbox, OTHER_NUMBER)})

    refused(response, 400, "16")
    assert upstream.calls_of("check") == [upstream.started[0]]


# Check limits, shared with the web flow -------------------------------------------


def test_check_limit_per_token(client, outbox, upstream, settings):
    settings.VERIFY_RATE_CHECK_PER_SESSION = "2/5m"
    token = start(client)
    api(client, "check", {"request_id": token, "code": wrong_code(outbox)})
    api(client, "check", {"request_id": token, "code": wrong_code(outbox)})

    response = api(client, "check", {"request_id": token, "code": last_code(outbox)})

    refused(response, 429, "1")
    assert int(response["Retry-After"]) > 0
    assert len(upstream.calls_of("check")) == 2


def test_check_limit_per_ip(client, outbox, upstream, settings):
    settings.VERIFY_RATE_CHECK_PER_IP = "2/5m"
    first, second = start(client, NUMBER), start(client, OTHER_NUMBER)
    api(client, "check", {"request_id": first, "code": "000000"})
    api(client, "check", {"request_id": second, "code": "000000"})

    response = api(client, "check", {"request_id": first, "code": last_code(outbox, NUMBER)})

    refused(response, 429, "1")
    assert len(upstream.calls_of("check")) == 2
    other_client = Client(REMOTE_ADDR="203.0.113.9")
    assert (
        api(
            other_client, "check", {"request_id": first, "code": last_code(outbox, NUMBER)}
        ).status_code
        == 200
    )


def test_web_checks_count_against_the_api_per_ip(client, outbox, settings):
    settings.VERIFY_RATE_CHECK_PER_IP = "2/5m"
    start_login(client)
    client.post("/verify/", {"code": "000000"})
    client.post("/verify/", {"code": "000000"})
    token = start(client, OTHER_NUMBER)

    response = api(client, "check", {"request_id": token, "code": last_code(outbox, OTHER_NUMBER)})

    refused(response, 429, "1")


def test_wrong_codes_on_the_web_lock_the_number_for_the_api(client, outbox, settings):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "2/h"
    start_login(client)
    client.post("/verify/", {"code": wrong_code(outbox)})
    client.post("/verify/", {"code": wrong_code(outbox)})
    client.post("/verify/cancel/")
    sent = len(outbox)

    # A locked number gets no new code: it could not be used anyway.
    response = api(client, "request", {"number": NUMBER})

    body = refused(response, 429, "1")
    assert body["error_text"].startswith("Too many wrong codes for this number")
    assert response.has_header("Retry-After")
    assert len(outbox) == sent


def test_wrong_codes_through_the_api_lock_the_number_for_later_tokens(client, outbox, settings):
    settings.VERIFY_RATE_WRONG_CODES_PER_NUMBER = "2/h"
    for _ in range(2):
        token = start(client)
        api(client, "check", {"request_id": token, "code": wrong_code(outbox)})
        api(client, "cancel", {"request_id": token})

    response = api(client, "request", {"number": NUMBER})

    refused(response, 429, "1")


# /api/verify/cancel ------------------------------------------------------------------


def test_cancel_stops_the_request(client, outbox, upstream):
    token = start(client)

    response = api(client, "cancel", {"request_id": token})

    assert response.status_code == 200
    assert response.json() == {"status": "0", "command": "cancel"}
    assert upstream.calls_of("cancel") == upstream.started
    refused(api(client, "check", {"request_id": token, "code": last_code(outbox)}), 400, "6")
    assert upstream.calls_of("check") == []
    # The number is free for a new request.
    assert start(client)


def test_cancel_the_provider_refuses_is_19_and_keeps_the_token(client, outbox, upstream):
    token = start(client)
    upstream.failures["cancel"] = ActionNotAllowed("within the first 30 s")

    body = refused(api(client, "cancel", {"request_id": token}), 400, "19")

    assert body["error_text"] == "This action is not possible now for this request"
    assert api(client, "check", {"request_id": token, "code": last_code(outbox)}).status_code == 200


def test_cancel_when_the_provider_is_down_is_503(client, upstream):
    token = start(client)
    upstream.failures["cancel"] = ProviderUnavailable("down")

    refused(api(client, "cancel", {"request_id": token}), 503, "5")


def test_cancel_of_an_ended_request_is_6(client, upstream):
    token = start(client)
    upstream.failures["cancel"] = VerificationExpired("gone")

    refused(api(client, "cancel", {"request_id": token}), 400, "6")
    refused(api(client, "cancel", {"request_id": token}), 400, "6")

    assert len(upstream.calls_of("cancel")) == 1


def test_cancel_takes_requestId_and_form_bodies(client):
    assert api(client, "cancel", {"requestId": start(client)}).status_code == 200
    response = api(client, "cancel", {"request_id": start(client)}, content_type=FORM)
    assert response.status_code == 200


def test_cancel_without_request_id_is_status_2(client):
    body = refused(api(client, "cancel", {}), 400, "2")

    assert body["error_text"] == "Missing mandatory field: request_id"


# /api/verify/next ----------------------------------------------------------------------


@pytest.fixture
def clock(time_machine):
    time_machine.move_to("2030-01-01 12:00:00+00:00", tick=False)
    return time_machine


def test_next_calls_with_the_code(client, outbox, upstream, clock, settings):
    token = start(client)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)

    response = api(client, "next", {"request_id": token})

    assert response.status_code == 200
    assert response.json() == {"status": "0", "command": "trigger_next_event"}
    assert [message.channel for message in outbox] == ["sms", "voice"]
    assert upstream.calls_of("next") == upstream.started
    assert api(client, "check", {"request_id": token, "code": last_code(outbox)}).status_code == 200


def test_next_too_soon_is_429_and_sends_nothing(client, outbox, upstream, clock, settings):
    token = start(client)
    clock.shift(10)

    response = api(client, "next", {"request_id": token})

    refused(response, 429, "1")
    assert response["Retry-After"] == str(settings.VERIFY_RESEND_COOLDOWN - 10)
    assert upstream.calls_of("next") == []
    assert len(outbox) == 1


def test_next_when_no_event_is_left_is_19(client, outbox, clock, settings):
    token = start(client)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)
    api(client, "next", {"request_id": token})
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)

    body = refused(api(client, "next", {"request_id": token}), 400, "19")

    assert body["error_text"] == "This action is not possible now for this request"
    assert len(outbox) == 2


def test_next_counts_as_a_code_sent(client, outbox, clock, settings):
    settings.VERIFY_RATE_START_PER_NUMBER = "1/15m"
    token = start(client)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)

    refused(api(client, "next", {"request_id": token}), 429, "1")

    assert len(outbox) == 1


def test_next_when_the_provider_is_down_is_503(client, upstream, clock, settings):
    token = start(client)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)
    upstream.failures["next"] = ProviderUnavailable("down")

    refused(api(client, "next", {"request_id": token}), 503, "5")


def test_next_of_an_ended_request_is_6(client, upstream, clock, settings):
    token = start(client)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)
    upstream.failures["next"] = VerificationExpired("gone")

    refused(api(client, "next", {"request_id": token}), 400, "6")


def test_next_without_request_id_is_status_2(client):
    refused(api(client, "next", {"number": NUMBER}), 400, "2")


# Sign-up off: unknown numbers get decoys ----------------------------------------------


def _wrong_code_answers(client, token, code):
    answers = []
    for _ in range(4):
        response = api(client, "check", {"request_id": token, "code": code})
        answers.append((response.status_code, response.json()))
    return answers


def test_with_signup_off_an_unknown_number_gets_the_same_answers_and_nothing_is_sent(
    client, outbox, upstream, settings
):
    settings.PASSWORDLESS_SIGNUP = False
    UserFactory(phone_number_for_2fa=NUMBER)

    registered = api(client, "request", {"number": NUMBER})
    unknown = api(client, "request", {"number": OTHER_NUMBER})

    assert registered.status_code == unknown.status_code == 200
    assert registered.json().keys() == unknown.json().keys()
    assert TOKEN_PATTERN.match(unknown.json()["request_id"])
    assert [message.number for message in outbox] == [NUMBER]
    assert upstream.calls_of("start") == [NUMBER]
    wrong = wrong_code(outbox)
    assert _wrong_code_answers(client, registered.json()["request_id"], wrong) == (
        _wrong_code_answers(client, unknown.json()["request_id"], wrong)
    )


def test_a_decoy_code_is_never_right(client, outbox, settings):
    settings.PASSWORDLESS_SIGNUP = False
    token = start(client, OTHER_NUMBER)

    for code in ["000000", "123456"]:
        refused(api(client, "check", {"request_id": token, "code": code}), 400, "16")
    refused(api(client, "check", {"request_id": token, "code": "654321"}), 400, "17")
    refused(api(client, "check", {"request_id": token, "code": "654321"}), 400, "6")


def test_a_decoy_answers_cancel_and_next_like_a_real_request(client, outbox, clock, settings):
    settings.PASSWORDLESS_SIGNUP = False
    token = start(client, OTHER_NUMBER)
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)

    assert api(client, "next", {"request_id": token}).status_code == 200
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)
    refused(api(client, "next", {"request_id": token}), 400, "19")
    assert api(client, "cancel", {"request_id": token}).json() == {
        "status": "0",
        "command": "cancel",
    }
    refused(api(client, "cancel", {"request_id": token}), 400, "6")
    assert outbox == []


# Transport: JSON always, POST only ------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["request", "check", "cancel", "next"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405_in_json(client, endpoint, method):
    response = api(client, endpoint, {"number": NUMBER}, method=method)

    body = refused(response, 405, "3")
    assert response["Allow"] == "POST"
    assert body["error_text"] == "Method not allowed: use POST"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", JSON),
        (b"", JSON),
        (b'["number"]', JSON),
        (b'"14155550100"', JSON),
        (b"14155550100", JSON),
        (b"null", JSON),
        (b"\xff\xfe\xfa", JSON),
        (b"[" * 2000 + b"]" * 2000, JSON),
        (b'{"number": "14155550100"}', "text/plain"),
        (b'{"number": "14155550100"}', "application/xml"),
        (
            b'--x\r\nContent-Disposition: form-data; name="number"\r\n\r\n1\r\n--x--',
            "multipart/form-data; boundary=x",
        ),
        (b'{"number": "14155550100"}', ""),
        (json.dumps({"number": NUMBER, "pad": "x" * 5000}).encode(), JSON),
        (b"number=" + b"1" * 5000, FORM),
    ],
    ids=[
        "malformed",
        "empty",
        "array",
        "string",
        "number",
        "null",
        "not-utf8",
        "deeply-nested",
        "text-plain",
        "xml",
        "multipart",
        "no-content-type",
        "too-large-json",
        "too-large-form",
    ],
)
@pytest.mark.parametrize("endpoint", ["request", "check", "cancel", "next"])
def test_a_bad_body_is_400_in_json_and_sends_nothing(client, outbox, endpoint, body, content_type):
    response = api(client, endpoint, body, content_type=content_type)

    refused(response, 400, "3")
    assert outbox == []


def test_a_body_larger_than_the_limit_says_so(client):
    body = json.dumps({"number": NUMBER, "pad": "x" * 5000}).encode()

    assert refused(api(client, "request", body), 400, "3")["error_text"] == (
        "The request body is too large"
    )


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("request", "number"),
        ("check", "request_id"),
        ("check", "code"),
        ("check", "number"),
        ("cancel", "request_id"),
        ("cancel", "number"),
        ("next", "request_id"),
        ("next", "number"),
    ],
)
def test_a_lone_surrogate_in_a_field_is_an_invalid_value(client, outbox, upstream, endpoint, field):
    # JSON may escape a lone surrogate ("\ud800"), which no UTF-8 text holds.
    fields = {"request_id": start(client), "code": last_code(outbox), "number": NUMBER}
    fields[field] = "\ud800:a:b"

    body = refused(api(client, endpoint, fields), 400, "3")

    assert body["error_text"] == f"Invalid value for param: {field}"
    assert [call for call, _ in upstream.calls] == ["start"]


def test_a_huge_json_integer_is_an_invalid_number(client, outbox):
    body = b'{"number": 1' + b"0" * 4050 + b"}"

    refused(api(client, "request", body), 400, "3")

    assert outbox == []


def test_an_empty_form_body_is_a_missing_field(client):
    refused(api(client, "request", b"", content_type=FORM), 400, "2")


@pytest.mark.parametrize("path", ["nope", "verify/request/", "verify/", "verify/search"])
def test_other_paths_under_api_are_json_404(client, path):
    response = api(client, path, {"number": NUMBER})

    refused(response, 404, "3")


def test_the_answers_are_never_cached(client):
    response = api(client, "request", {"number": NUMBER})

    assert "no-store" in response["Cache-Control"]


def test_a_bug_is_a_json_500_without_traceback(client, monkeypatch, caplog):
    def broken(request, *, number):
        raise RuntimeError("secret detail of the bug")

    monkeypatch.setattr(flows, "api_verification_request", broken)

    response = api(client, "request", {"number": NUMBER})

    assert refused(response, 500, "5") == {"status": "5", "error_text": "Internal error"}
    assert b"secret detail" not in response.content
    assert b"Traceback" not in response.content
    assert "unexpected error in the JSON API" in caplog.text


# CSRF and CORS ---------------------------------------------------------------------------


def test_the_api_needs_no_csrf_token_while_the_web_login_does(outbox):
    browser = Client(enforce_csrf_checks=True)

    assert api(browser, "request", {"number": NUMBER}).status_code == 200
    assert api(browser, "request", {"number": OTHER_NUMBER}, content_type=FORM).status_code == 200
    assert browser.post("/login/", {"number": NUMBER}).status_code == 403
    assert len(outbox) == 2


def test_cors_is_off_by_default(client, outbox):
    preflight = api(
        client,
        "request",
        method="OPTIONS",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    response = api(client, "request", {"number": NUMBER}, HTTP_ORIGIN=ORIGIN)

    refused(preflight, 405, "3")
    assert not preflight.has_header("Access-Control-Allow-Origin")
    # A page of another origin is refused outright (tests/security/test_api_cross_origin.py).
    refused(response, 403, "3")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert outbox == []


def test_cors_for_a_configured_origin(client, settings):
    settings.API_CORS_ORIGINS = [ORIGIN]

    preflight = api(
        client,
        "check",
        method="OPTIONS",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    response = api(client, "request", {"number": NUMBER}, HTTP_ORIGIN=ORIGIN)

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert preflight["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert preflight["Access-Control-Allow-Headers"] == "Content-Type"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Expose-Headers"] == "Retry-After"
    assert "Origin" in response["Vary"]


def test_cors_refuses_an_origin_not_configured(client, settings):
    settings.API_CORS_ORIGINS = [ORIGIN]
    evil = "https://evil.example"

    preflight = api(
        client,
        "request",
        method="OPTIONS",
        HTTP_ORIGIN=evil,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    response = api(client, "request", {"number": NUMBER}, HTTP_ORIGIN=evil)

    refused(preflight, 405, "3")
    refused(response, 403, "3")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert not preflight.has_header("Access-Control-Allow-Origin")


# The record of events ----------------------------------------------------------------------


@pytest.fixture
def events(monkeypatch):
    """Every verification_event the API flows report, as keyword dicts."""
    recorded = []
    original = flows.verification_event

    def record(request, **kwargs):
        recorded.append(kwargs)
        original(request, **kwargs)

    monkeypatch.setattr(flows, "verification_event", record)
    # Every step is recorded by the verification process the pages share.
    monkeypatch.setattr(process, "verification_event", record)
    return recorded


def test_every_step_is_reported_as_an_api_event(client, outbox, events, clock, settings, caplog):
    token = start(client)
    api(client, "check", {"request_id": token, "code": wrong_code(outbox)})
    clock.shift(settings.VERIFY_RESEND_COOLDOWN)
    api(client, "next", {"request_id": token})
    api(client, "check", {"request_id": token, "code": last_code(outbox)})
    api(client, "check", {"request_id": "forged", "code": "123456"})
    api(client, "cancel", {"request_id": start(client, OTHER_NUMBER)})

    outcomes = [(event["outcome"], event.get("detail", "")) for event in events]
    # A right code's row names, as a digest, who typed it (nothing lost).
    outcomes = [(o, "by …" if d.startswith("by ") else d) for o, d in outcomes]
    assert outcomes == [
        ("started", ""),
        ("wrong_code", "16"),
        ("started", "call"),
        ("succeeded", "by …"),
        ("started", ""),
        ("cancelled", ""),
    ]
    assert {event["purpose"] for event in events} == {"api"}
    # A forged token is a log line only: it costs the sender nothing, so it
    # must not cost a database row either.
    assert "api request_id refused: bad_signature" in caplog.text


def test_rate_limits_and_refusals_are_reported(client, events, settings):
    settings.VERIFY_RATE_START_PER_NUMBER = "1/15m"
    token = start(client)
    api(client, "cancel", {"request_id": token})
    api(client, "request", {"number": NUMBER})
    other = start(client, OTHER_NUMBER)
    api(client, "check", {"request_id": other, "code": "123456", "number": NUMBER})

    outcomes = [(event["outcome"], event.get("detail", "")) for event in events]
    assert outcomes == [
        ("started", ""),
        ("cancelled", ""),
        ("rate_limited", "verify.start.number"),
        ("started", ""),
        ("refused", "number mismatch"),
    ]


def test_the_log_never_holds_a_code_or_a_full_number(client, outbox, caplog):
    caplog.set_level("DEBUG")
    token = start(client)
    code = last_code(outbox)
    api(client, "check", {"request_id": token, "code": code})

    assert "verification event=started purpose=api number=+1 415 ••• ••00" in caplog.text
    assert "4155550100" not in caplog.text
    assert code not in caplog.text
