"""With sign-up off and Vonage behind the site, unknown numbers follow Vonage's rules too.

A decoy (a number that cannot log in) never reaches Vonage, so it must copy
the rules a person would notice: a cancel refused in the first 30 seconds,
and as many calls as the workflow has.
"""

import time

import pytest
import time_machine
from django.test import Client

from .conftest import NUMBER, messages_of
from .factories import UserFactory

pytestmark = pytest.mark.django_db

UNKNOWN = "+14155551200"  # masked like NUMBER: +1 415 ••• ••00


@pytest.fixture
def signup_off(settings):
    settings.PASSWORDLESS_SIGNUP = False
    # Both people send from 127.0.0.1: the rules under test, not the limits.
    settings.VERIFY_RATE_START_PER_IP = settings.VERIFY_RATE_START_PER_NUMBER = "100/h"
    UserFactory(phone_number_for_2fa=NUMBER)


def told(client, response):
    return response["Location"], messages_of(client.get(response["Location"]))


def both(step):
    answers = {}
    for number in (NUMBER, UNKNOWN):
        client = Client()
        client.post("/login/", {"number": number})
        answers[number] = step(client)
    return answers[NUMBER], answers[UNKNOWN]


def test_an_early_cancel_reads_the_same(signup_off, vonage_backend_settings, vonage_emulator):
    def step(client):
        return told(client, client.post("/verify/cancel/"))

    registered, unknown = both(step)
    assert "may still arrive" in " ".join(registered[1])
    assert unknown == registered


def test_a_late_cancel_reads_the_same(signup_off, vonage_backend_settings, vonage_emulator):
    def step(client):
        vonage_emulator.advance(31)
        with time_machine.travel(time.time() + 31):
            return told(client, client.post("/verify/cancel/"))

    registered, unknown = both(step)
    assert registered[1][-1] == "Cancelled. The code we sent will not work any more."
    assert unknown == registered


def test_calls_follow_the_legacy_workflow_for_everyone(
    signup_off, vonage_legacy_backend_settings, vonage_emulator
):
    def step(client):
        answers = []
        # 31 seconds apart: past the resend cooldown, before Vonage's own
        # timed events (the first call comes by itself after 125 s).
        for step in (1, 2, 3):
            vonage_emulator.advance(31)
            with time_machine.travel(time.time() + 31 * step):
                answers.append(told(client, client.post("/verify/call/")))
        return answers

    registered, unknown = both(step)
    # Workflow 1 is SMS, call, call: two calls, then no more.
    assert [messages[-1].startswith("We are calling") for _, messages in registered] == [
        True,
        True,
        False,
    ]
    assert unknown == registered
