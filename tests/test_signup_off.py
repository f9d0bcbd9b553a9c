"""PASSWORDLESS_SIGNUP off: an unknown number sees exactly what a registered one sees.

Each test runs the same steps for a registered number and for an unknown one,
in two browsers, and compares what each person gets: status, redirect,
messages, the page itself (CSRF tokens aside). Nothing may be sent to the
unknown number and no code may ever log it in.
"""

import datetime
import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User

from .conftest import NUMBER, last_code, messages_of, pending
from .factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = NUMBER  # +1 415 ••• ••00
UNKNOWN = "+14155551200"  # masked alike: +1 415 ••• ••00
MASKED = "+1 415 ••• ••00"
START = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
WAIT = re.compile(r"\d+ (minutes?|seconds?)")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.fixture(autouse=True)
def _signup_off(settings):
    settings.PASSWORDLESS_SIGNUP = False


@pytest.fixture
def registered(db):
    return UserFactory(phone_number_for_2fa=REGISTERED)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def answer(client, response):
    """What the person sees: status, where they are sent, the page and its messages."""
    seen = {"status": response.status_code, "location": response.get("Location")}
    if response.status_code == 302:
        response = client.get(response["Location"])
        seen["then"] = response.status_code
    seen["messages"] = messages_of(response)
    page = CSRF.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())
    # A form shown again holds the number as its person typed it: their own
    # input, not something the site tells them.
    seen["page"] = page.replace(REGISTERED, "NUMBER").replace(UNKNOWN, "NUMBER")
    return seen


def both(step):
    """Run `step(client, number)` for the registered and the unknown number; return both answers."""
    registered_client, unknown_client = Client(), Client()
    return (
        answer(registered_client, step(registered_client, REGISTERED)),
        answer(unknown_client, step(unknown_client, UNKNOWN)),
    )


def start(client, number):
    return client.post("/login/", {"number": number})


def test_numbers_chosen_look_alike_once_masked():
    from accounts.phone import mask_phone_number

    assert mask_phone_number(REGISTERED) == mask_phone_number(UNKNOWN) == MASKED


def test_unknown_number_gets_the_same_redirect_page_and_message(registered, outbox):
    for_registered, for_unknown = both(start)
    assert for_registered["status"] == 302
    assert for_registered["location"] == "/verify/"
    assert f'we sent a code to <strong class="number">{MASKED}</strong>' in for_registered["page"]
    assert for_unknown == for_registered


def test_nothing_is_sent_to_an_unknown_number(registered, outbox):
    users_before = User.objects.count()
    client = Client()
    response = start(client, UNKNOWN)
    assert response["Location"] == "/verify/"
    assert outbox == []
    assert User.objects.count() == users_before


def test_no_code_ever_logs_in_an_unknown_number(registered, outbox, clock):
    # The code a registered number really got, typed by someone else...
    other = Client()
    start(other, REGISTERED)
    real_code = last_code(outbox, REGISTERED)
    client = Client()
    start(client, UNKNOWN)
    for code in (real_code, "000000", "123456"):
        response = client.post("/verify/", {"code": code})
        assert SESSION_KEY not in client.session
        assert response["Location"] in {"/verify/", "/login/"}
    assert response["Location"] == "/login/"
    # ...nor any code after a fresh start and a resend.
    start(client, UNKNOWN)
    clock.shift(60)
    client.post("/verify/resend/")
    client.post("/verify/", {"code": real_code})
    assert SESSION_KEY not in client.session
    assert outbox[-1].number == REGISTERED
    assert [message.number for message in outbox] == [REGISTERED]
    assert User.objects.count() == 1


def test_wrong_codes_get_identical_answers(registered, outbox):
    clients = {REGISTERED: Client(), UNKNOWN: Client()}
    for number, client in clients.items():
        answer(client, start(client, number))
    wrong = f"{(int(last_code(outbox, REGISTERED)[0]) + 1) % 10}{last_code(outbox, REGISTERED)[1:]}"
    for attempt in range(3):
        seen = {
            number: answer(client, client.post("/verify/", {"code": wrong}))
            for number, client in clients.items()
        }
        assert seen[UNKNOWN] == seen[REGISTERED], f"attempt {attempt + 1}"
    assert seen[REGISTERED]["location"] == "/login/"
    assert seen[REGISTERED]["messages"] == [
        "Wrong code too many times. Start again to get a new code."
    ]
    for client in clients.values():
        assert pending(client) is None
        assert SESSION_KEY not in client.session


def test_malformed_code_gets_identical_answers(registered):
    def step(client, number):
        answer(client, start(client, number))
        return client.post("/verify/", {"code": "12ab"})

    for_registered, for_unknown = both(step)
    assert for_registered["status"] == 200
    assert "Enter the 6-digit code from the message, digits only." in for_registered["page"]
    assert for_unknown == for_registered


def test_resend_gets_identical_answers_and_sends_nothing_to_the_unknown(registered, outbox, clock):
    def step(client, number):
        answer(client, start(client, number))
        clock.shift(60)
        return client.post("/verify/resend/")

    for_registered, for_unknown = both(step)
    assert for_registered["messages"] == [f"A new code is on its way to {MASKED}."]
    assert for_unknown == for_registered
    assert [message.number for message in outbox] == [REGISTERED, REGISTERED]


def test_calls_get_identical_answers(registered, outbox, clock, settings):
    # Both people send three times from 127.0.0.1: the answers under test,
    # not the per-address limit (six sends would pass it in one window).
    settings.VERIFY_RATE_START_PER_IP = "100/h"

    def step(client, number):
        answer(client, start(client, number))
        clock.shift(60)
        answer(client, client.post("/verify/call/"))
        clock.shift(60)
        return client.post("/verify/call/")

    for_registered, for_unknown = both(step)
    assert for_unknown == for_registered
    assert [message.number for message in outbox] == [REGISTERED, REGISTERED]


def test_starting_again_in_the_same_browser_gets_identical_answers(registered, outbox):
    def step(client, number):
        answer(client, start(client, number))
        return start(client, number)

    for_registered, for_unknown = both(step)
    assert for_registered["location"] == "/verify/"
    assert for_unknown == for_registered


def test_starting_from_a_second_browser_gets_identical_answers(registered, outbox):
    def step(client, number):
        first_browser = Client()
        answer(first_browser, start(first_browser, number))
        return start(client, number)

    for_registered, for_unknown = both(step)
    assert for_unknown == for_registered


def test_cancel_gets_identical_answers(registered):
    def step(client, number):
        answer(client, start(client, number))
        return client.post("/verify/cancel/")

    for_registered, for_unknown = both(step)
    assert for_registered["location"] == "/login/"
    assert for_unknown == for_registered


def test_limits_answer_alike(registered, outbox, settings):
    """The per-number limit counts starts to an unknown number as it counts real ones."""
    limit = int(settings.VERIFY_RATE_START_PER_NUMBER.split("/")[0])

    def step(client, number):
        for index in range(limit):
            response = client.post(
                "/login/", {"number": number}, REMOTE_ADDR=f"198.51.100.{index + 1}"
            )
            assert response.status_code == 302
            answer(client, response)
            answer(client, client.post("/verify/cancel/"))
        return client.post("/login/", {"number": number}, REMOTE_ADDR="198.51.100.99")

    for_registered, for_unknown = both(step)
    assert for_registered["status"] == 429
    # How long to wait depends on the number's own rate-limit window, not on
    # whether it is registered.
    for seen in (for_registered, for_unknown):
        seen["messages"] = [WAIT.sub("N minutes", text) for text in seen["messages"]]
        seen["page"] = WAIT.sub("N minutes", seen["page"])
    assert for_registered["messages"] == ["Too many attempts. Wait N minutes, then try again."]
    assert for_unknown == for_registered


def test_registered_number_logs_in(registered, outbox):
    client = Client()
    start(client, REGISTERED)
    response = client.post("/verify/", {"code": last_code(outbox, REGISTERED)})
    assert response["Location"] == "/"
    assert int(client.session[SESSION_KEY]) == registered.pk
    assert User.objects.count() == 1


def test_inactive_user_is_treated_as_unknown(outbox):
    UserFactory(phone_number_for_2fa=REGISTERED, is_active=False)
    client = Client()
    response = start(client, REGISTERED)
    assert response["Location"] == "/verify/"
    assert outbox == []
    client.post("/verify/", {"code": "123456"})
    assert SESSION_KEY not in client.session
    assert User.objects.count() == 1
