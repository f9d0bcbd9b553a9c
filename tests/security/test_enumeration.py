"""Account enumeration: does the site tell whether a number has an account?

With sign-up closed (PASSWORDLESS_SIGNUP=false) a number without an account
gets a stand-in verification: the same pages, the same redirects, no code
sent. The attacker compares the answers for a known customer's number and a
number with no account, byte for byte (CSRF tokens aside) and by the clock.
The two numbers below are masked alike ("+1 415 ••• ••00"), as any two
numbers that share their first three and last two digits are.
"""

from __future__ import annotations

import difflib
import time

import pytest
from django.core.cache import cache

from ..conftest import NUMBER, start_login
from .conftest import attacker, compare_timings, page_text, strip_tokens, wrong_code

pytestmark = pytest.mark.django_db

REGISTERED = NUMBER
UNKNOWN = "+14155551200"


@pytest.fixture(autouse=True)
def _signup_closed(settings, user):
    settings.PASSWORDLESS_SIGNUP = False
    assert str(user.phone_number_for_2fa) == REGISTERED


def answer(response) -> tuple:
    """Return what a browser sees of a response: redirects, status, page without tokens.

    A form shown again holds the number as typed: the attacker knows it, so
    it is no tell and is blanked like the tokens.
    """
    page = strip_tokens(page_text(response))
    for number in (REGISTERED, UNKNOWN):
        page = page.replace(f'value="{number}"', 'value="TYPED"')
    return ([url for url, _status in response.redirect_chain], response.status_code, page)


def difference(registered: tuple, unknown: tuple) -> str:
    """Return what tells the two answers apart, as a diff a person can read."""
    head = f"redirects {registered[0]} vs {unknown[0]}, status {registered[1]} vs {unknown[1]}"
    lines = difflib.unified_diff(
        registered[2].splitlines(),
        unknown[2].splitlines(),
        "registered",
        "unknown",
        n=0,
        lineterm="",
    )
    return head + "\n" + "\n".join(lines)


def assert_same_answers(registered: list[tuple], unknown: list[tuple]) -> None:
    assert len(registered) == len(unknown)
    for step, (seen_registered, seen_unknown) in enumerate(zip(registered, unknown, strict=True)):
        same = seen_registered == seen_unknown  # compared first: pytest's own diff is slow
        assert same, (
            f"step {step} tells the numbers apart: {difference(seen_registered, seen_unknown)}"
        )


def flow_transcript(number: str, outbox, time_machine, settings) -> list[tuple]:
    """Walk the whole login flow for `number` as an attacker would, and return every answer."""
    cooldown = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1
    browser = attacker()

    def guess():
        # Wrong for a real request; any code is wrong for a stand-in.
        sent = [message.code for message in outbox if message.number == number]
        return {"code": wrong_code(sent[-1] if sent else "123456")}

    transcript = [
        answer(browser.get("/login/", follow=True)),
        answer(browser.post("/login/", {"number": number}, follow=True)),
        answer(browser.post("/verify/", guess(), follow=True)),
        answer(browser.post("/verify/", guess(), follow=True)),
    ]
    time_machine.shift(cooldown)
    transcript.append(answer(browser.post("/verify/resend/", follow=True)))
    transcript.append(answer(browser.post("/verify/", guess(), follow=True)))
    time_machine.shift(cooldown)
    transcript.append(answer(browser.post("/verify/call/", follow=True)))
    transcript.append(answer(browser.post("/verify/", guess(), follow=True)))
    transcript.append(answer(browser.post("/verify/", guess(), follow=True)))
    transcript.append(answer(browser.get("/verify/", follow=True)))
    return transcript


def test_registered_and_unknown_numbers_get_the_same_pages_and_redirects(
    settings, outbox, time_machine
):
    time_machine.move_to(time.time())
    registered = flow_transcript(REGISTERED, outbox, time_machine, settings)
    unknown = flow_transcript(UNKNOWN, outbox, time_machine, settings)

    assert_same_answers(registered, unknown)
    # The flow really ran: codes went to the customer, never to the unknown number.
    assert registered[1][0] == ["/verify/"]
    assert registered[-2][0] == ["/login/"]
    assert {message.number for message in outbox} == {REGISTERED}


def test_a_second_browser_gets_the_same_answer_for_registered_and_unknown_numbers(outbox):
    answers = {}
    for number in (REGISTERED, UNKNOWN):
        first, second = attacker(), attacker()
        start_login(first, number)
        answers[number] = [answer(start_login(second, number, follow=True))]
    assert_same_answers(answers[REGISTERED], answers[UNKNOWN])
    assert {message.number for message in outbox} == {REGISTERED}


def test_asking_for_a_call_twice_gets_the_same_answer_for_both(settings, outbox, time_machine):
    time_machine.move_to(time.time())
    cooldown = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1
    answers = {}
    for number in (REGISTERED, UNKNOWN):
        browser = attacker()
        start_login(browser, number)
        calls = []
        for _ in range(2):
            time_machine.shift(cooldown)
            calls.append(answer(browser.post("/verify/call/", follow=True)))
        answers[number] = calls
    assert_same_answers(answers[REGISTERED], answers[UNKNOWN])
    assert {message.number for message in outbox} == {REGISTERED}


def time_login_start(number: str) -> float:
    """Return the seconds one POST /login/ takes for `number`, from a fresh browser."""
    # Counters and the provider's live request are reset, so every start is a first start.
    cache.clear()
    browser = attacker()
    browser.get("/login/")
    began = time.perf_counter()
    response = start_login(browser, number)
    elapsed = time.perf_counter() - began
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    return elapsed


def test_no_timing_gap_between_registered_and_unknown_numbers(outbox):
    registered, unknown, tolerance = compare_timings(time_login_start, REGISTERED, UNKNOWN)
    assert abs(registered - unknown) <= tolerance, (
        f"median POST /login/: registered {registered * 1000:.1f} ms, "
        f"unknown {unknown * 1000:.1f} ms, tolerance {tolerance * 1000:.1f} ms"
    )


def test_no_timing_gap_when_the_provider_takes_its_time(outbox, upstream):
    # A real provider answers a start in a few hundred milliseconds (Vonage:
    # typically 200-600 ms); the stand-in for an unknown number asks nobody.
    upstream.latency["start"] = 0.05
    registered, unknown, tolerance = compare_timings(time_login_start, REGISTERED, UNKNOWN)
    assert abs(registered - unknown) <= tolerance, (
        f"median POST /login/ with a 50 ms provider: registered {registered * 1000:.1f} ms, "
        f"unknown {unknown * 1000:.1f} ms, tolerance {tolerance * 1000:.1f} ms"
    )


def test_pages_for_unknown_numbers_say_a_code_was_sent(outbox):
    response = start_login(attacker(), UNKNOWN, follow=True)
    assert 'we sent a code to <strong class="number">+1 415 ••• ••00</strong>' in (
        response.content.decode()
    )
    assert outbox == []


@pytest.mark.parametrize("backend", ["vonage_backend_settings", "vonage_legacy_backend_settings"])
def test_cancelling_at_once_through_vonage_gets_the_same_answer_for_both(
    request, vonage_emulator, backend
):
    """Vonage refuses every cancel in a request's first 30 seconds: the usual case."""
    request.getfixturevalue(backend)
    answers = {}
    for number in (REGISTERED, UNKNOWN):
        browser = attacker()
        start_login(browser, number)
        answers[number] = [answer(browser.post("/verify/cancel/", follow=True))]
    assert_same_answers(answers[REGISTERED], answers[UNKNOWN])
    assert {message.number for message in vonage_emulator.messages} == {REGISTERED}


@pytest.mark.parametrize("backend", ["vonage_backend_settings", "vonage_legacy_backend_settings"])
def test_calling_then_cancelling_through_vonage_gets_the_same_answer_for_both(
    request, settings, vonage_emulator, time_machine, backend
):
    """After the call (the second event) Vonage refuses a cancel: the stand-in must too."""
    request.getfixturevalue(backend)
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    wait = getattr(settings, "VERIFY_RESEND_COOLDOWN", 30) + 1
    answers = {}
    for number in (REGISTERED, UNKNOWN):
        browser = attacker()
        start_login(browser, number)
        time_machine.shift(wait)
        vonage_emulator.advance(wait)
        calls = answer(browser.post("/verify/call/", follow=True))
        vonage_emulator.advance(wait)
        time_machine.shift(wait)
        answers[number] = [calls, answer(browser.post("/verify/cancel/", follow=True))]
    assert_same_answers(answers[REGISTERED], answers[UNKNOWN])
    assert {message.number for message in vonage_emulator.messages} == {REGISTERED}


def account_phone_transcript(number: str, outbox, *, current: str | None) -> list[tuple]:
    """Add `number` on the account page as a logged-in prober would; return every answer.

    `current` is the prober's own phone, if any: its step-up code comes first.
    """
    from tests.factories import UserFactory

    with_phone = current is not None
    prober = UserFactory(phone_number_for_2fa=current)
    browser = attacker()
    browser.force_login(prober)
    transcript = [answer(browser.post("/account/phone/", {"number": number}, follow=True))]
    if with_phone:
        # The step-up to the prober's own phone comes first, with its right code.
        step_up = [message.code for message in outbox if message.number == current][-1]
        transcript.append(answer(browser.post("/verify/", {"code": step_up}, follow=True)))
    for _ in range(3):
        sent = [message.code for message in outbox if message.number == number]
        guess = wrong_code(sent[-1] if sent else "123456")
        transcript.append(answer(browser.post("/verify/", {"code": guess}, follow=True)))
    transcript.append(answer(browser.get("/account/", follow=True)))
    return [_without_username(step, prober.username) for step in transcript]


def _without_username(step: tuple, username: str) -> tuple:
    redirects, status, page = step
    return redirects, status, page.replace(username, "PROBER")


@pytest.mark.parametrize(
    "phones",
    [(None, None), ("+14155550177", "+14155551277")],
    ids=["first phone", "change of phone"],
)
def test_the_account_page_answers_a_taken_number_like_a_free_one(outbox, phones):
    """Adding another account's number tells nothing: same pages, nothing sent to it."""
    # Two probers whose own phones (if any) are masked alike.
    taken = account_phone_transcript(REGISTERED, outbox, current=phones[0])
    free = account_phone_transcript(UNKNOWN, outbox, current=phones[1])

    assert_same_answers(taken, free)
    # The refusal comes only at the end, as for three wrong codes.
    assert taken[0][0] == ["/verify/"]
    assert "Wrong code too many times" in taken[-2][2]
    assert REGISTERED not in {message.number for message in outbox}
