"""Fuzzing: arbitrary text, unicode, control characters, huge values and missing fields.

Hypothesis throws them at every form and endpoint. Whatever arrives, the
answer is never an HTTP 500 (the autouse guard), and input that is not valid
writes nothing: no user, no verification log row, no code sent. Validity is
judged here independently of the forms: a phone number is what phonenumbers
accepts, a code is six ASCII digits give or take spaces and hyphens.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import phonenumbers
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from verificationlog.models import VerificationLog

from ..conftest import NUMBER, start_login
from ..factories import UserFactory
from .conftest import api_endpoints, attacker

pytestmark = pytest.mark.django_db

fuzz = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis directory in the checkout
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

PASSWORD = "correct horse battery staple"
NASTY = [
    "",
    " ",
    "\x00",
    "+",
    "+1",
    "+14155550100\x00",
    "+1 415 555 0100\n",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
    "٠١٢٣٤٥",  # Arabic-Indic digits
    "123 456",
    "123-456",
    "1e6",
    "-1",
    "NaN",
    "null",
    "[]",
    "{}",
    "' OR '1'='1' --",
    "<script>alert(1)</script>",
    "{{ 7|add:7 }}{% debug %}",
    "%00%0d%0a",
    "%2B14155550100",
    "\u202e0010555514+",
    "tel:+14155550100",
    "+1 (415) 555-0100 ext. 9",
    "+99999999999999999999999999999",
    "0" * 33,
    "\ud7ff\ue000\uffff",
    "🙂" * 8,
]
characters = st.characters(exclude_categories=("Cs",))  # surrogates cannot be sent at all
text = st.one_of(
    st.text(characters, max_size=40),
    st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp")), max_size=20),
    st.from_regex(r"\A[+0-9 ()\-.]{0,40}\Z"),
    st.sampled_from(NASTY),
    st.builds(lambda char, size: char * size, characters, st.sampled_from([1_000, 100_000])),
)
# None leaves the field out; a list sends it several times.
value = st.one_of(st.none(), text, st.lists(text, min_size=2, max_size=3))


def form(**fields) -> dict:
    return {name: field for name, field in fields.items() if field is not None}


def last_value(field):
    """Return the value Django's QueryDict.get would read, or None."""
    if isinstance(field, list):
        return field[-1] if field else None
    return field


def phonenumbers_accepts(field) -> bool:
    """Whether `field` is a phone number a form could accept (judged by phonenumbers)."""
    typed = last_value(field)
    if typed is None or "\x00" in typed:
        return False
    typed = typed.strip()
    if not typed or len(typed) > 32:
        return False
    try:
        parsed = phonenumbers.parse(typed, django_settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def code_shaped(field) -> bool:
    """Whether `field` could be a code: six ASCII digits once spaces and hyphens go."""
    typed = last_value(field)
    if typed is None:
        return False
    digits = re.sub(r"[\s-]", "", typed)
    return digits.isascii() and digits.isdigit() and len(digits) == 6


def written() -> tuple[int, int]:
    return User.objects.count(), VerificationLog.objects.count()


@pytest.fixture
def writes(outbox):
    """Return a function that reports rows written and codes sent since the last call."""
    state = {"rows": written(), "sent": len(outbox)}

    def since_last():
        now = {"rows": written(), "sent": len(outbox)}
        changed = {key: now[key] != state[key] for key in now}
        state.update(now)
        return changed

    return since_last


NOTHING = {"rows": False, "sent": False}


@fuzz
@given(number=value, next_url=st.one_of(st.just(""), text))
def test_login_form_survives_anything(writes, upstream, number, next_url):
    upstream.reset()
    writes()
    response = attacker().post("/login/?" + urlencode({"next": next_url}), form(number=number))
    assert response.status_code in {200, 302, 400, 429}
    if not phonenumbers_accepts(number):
        assert response.status_code in {200, 400}
        assert writes() == NOTHING
        assert upstream.calls == []


@fuzz
@given(code=value)
def test_code_form_survives_anything(outbox, writes, upstream, code):
    cache.clear()  # limits and live requests from earlier examples
    browser = attacker()
    start_login(browser)
    upstream.reset()
    writes()
    response = browser.post("/verify/", form(code=code))
    assert response.status_code in {200, 302, 400, 429}
    assert browser.session.get(SESSION_KEY) is None or code_shaped(code)
    if not code_shaped(code):
        assert writes() == NOTHING
        assert upstream.calls == []


@fuzz
@given(
    path=st.sampled_from(["/verify/resend/", "/verify/call/", "/verify/cancel/", "/logout/"]),
    body=st.dictionaries(text, value, max_size=4),
)
def test_actions_without_a_verification_survive_anything(writes, upstream, path, body):
    upstream.reset()
    writes()
    fields = {name: field for name, field in body.items() if field is not None}
    response = attacker().post(path, fields)
    assert response.status_code in {302, 400}
    assert writes() == NOTHING
    assert upstream.calls == []


@fuzz
@given(username=value, password=value)
def test_password_login_survives_anything(writes, upstream, username, password):
    UserFactory.reset_sequence()
    if not User.objects.filter(username="alice").exists():
        UserFactory(username="alice", phone_number_for_2fa=NUMBER, is_2fa_enabled=True)
    upstream.reset()
    writes()
    browser = attacker()
    response = browser.post("/login/password/", form(username=username, password=password))
    assert response.status_code in {200, 400, 429}
    assert browser.session.get(SESSION_KEY) is None
    assert writes() == NOTHING
    assert upstream.calls == []


@pytest.fixture
def logged_in(db):
    user = UserFactory(username="owner", phone_number_for_2fa=NUMBER)
    browser = attacker()
    browser.force_login(user)
    return user, browser


@fuzz
@given(number=value)
def test_phone_change_form_survives_anything(logged_in, writes, upstream, number):
    user, browser = logged_in
    cache.clear()
    upstream.reset()
    writes()
    response = browser.post("/account/phone/", form(number=number))
    assert response.status_code in {200, 302, 400, 429}
    user.refresh_from_db()
    assert str(user.phone_number_for_2fa) == NUMBER
    if not phonenumbers_accepts(number):
        assert writes() == NOTHING
        assert upstream.calls == []


@fuzz
@given(old=value, new1=value, new2=value)
def test_password_change_form_survives_anything(logged_in, writes, old, new1, new2):
    user, browser = logged_in
    password_before = User.objects.get(pk=user.pk).password
    writes()
    response = browser.post(
        "/account/password/", form(old_password=old, new_password1=new1, new_password2=new2)
    )
    assert response.status_code in {200, 400}
    assert User.objects.get(pk=user.pk).password == password_before
    assert writes() == NOTHING


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
    ),
    max_leaves=8,
)
api_fields = st.sampled_from(["number", "request_id", "requestId", "code", "brand", "extra"])
# Bodies shaped like real ones, with made-up values: a forged request_id, a
# code of the right shape, a number or not.
shaped_bodies = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.one_of(
            text, st.from_regex(r"\A[A-Za-z0-9_-]{24}:[A-Za-z0-9_-]{6}:[A-Za-z0-9_-]{43}\Z")
        ),
        "code": st.one_of(text, st.from_regex(r"\A[0-9]{6}\Z")),
        "number": st.one_of(text, st.integers(), st.sampled_from([NUMBER, "14155550100"])),
    },
).map(json.dumps)
json_bodies = st.one_of(
    shaped_bodies,
    st.dictionaries(api_fields, json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),
    st.sampled_from(["", "{", "[" * 5000, '{"number": "+14155550100"', "\x00", "{}" * 3000]),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
)


@pytest.mark.parametrize("name", ["request", "check", "cancel", "next"])
@fuzz
# A request_id nobody issued, in a body that is otherwise right.
@example(body='{"request_id": "0", "code": "123456"}', content_type="application/json")
@example(body='{"request_id": "0", "number": "+14155550100"}', content_type="application/json")
@given(
    body=json_bodies,
    content_type=st.sampled_from(
        ["application/json", "application/json", "application/x-www-form-urlencoded", "text/plain"]
    ),
)
def test_api_survives_anything(writes, upstream, name, body, content_type):
    path = api_endpoints()[name]
    upstream.reset()
    writes()
    response = attacker().post(
        path, body.encode("utf-8", "surrogatepass"), content_type=content_type
    )
    assert response.status_code in {200, 400, 404, 405, 413, 429}
    assert response["Content-Type"].startswith("application/json")
    try:
        number = json.loads(body).get("number") if content_type == "application/json" else None
    except (ValueError, AttributeError, RecursionError):
        number = None
    if (isinstance(number, int) and not isinstance(number, bool)) or (
        isinstance(number, str) and not number.startswith("+")
    ):
        number = f"+{number}"
    if name != "request" or not (isinstance(number, str) and phonenumbers_accepts(number)):
        # A forged or malformed request_id, or no valid number: nothing to record.
        assert writes() == NOTHING, response.json()
        assert upstream.calls == []
