"""The pages' table from refusal to answer (flows/refusals.py)."""

from __future__ import annotations

import pytest

from flows import refusals
from flows.exceptions import CodeAlreadySent, RateLimited
from flows.views import VerifyView
from verification.exceptions import IncorrectCode, VerificationError

from .conftest import last_code, start_login

pytestmark = pytest.mark.django_db


def test_every_answer_of_the_table_has_its_words():
    for rows in (refusals._ANY_STEP, *refusals.REFUSALS.values()):
        for cls, refusal in rows:
            if callable(refusal.message):
                continue
            assert refusal.message in refusals.MESSAGES, (cls, refusal)


def test_the_first_matching_row_wins():
    wrong = IncorrectCode(attempts_left=2)
    assert refusals.refusal_for("check", wrong).message == "incorrect_code"
    assert refusals.refusal_for("check", VerificationError()).message == "unavailable"
    assert refusals.refusal_for("start", CodeAlreadySent(None)).to == "flows:verify"


def test_a_limit_has_no_row_its_step_answers_it_with_the_429_page(client, settings):
    settings.VERIFY_RATE_START_PER_IP = "1/h"
    start_login(client)
    client.post("/verify/cancel/")
    response = start_login(client)
    assert refusals.refusal_for("start", RateLimited(retry_after=1, scope="x")) is None
    assert response.status_code == 429


def test_a_bug_in_a_finisher_is_no_expired_code(client, outbox, user, monkeypatch):
    """Only refusals become messages: a KeyError is a bug, not "your code expired"."""

    def broken(view, pending):
        raise KeyError("a bug")

    monkeypatch.setitem(VerifyView.finishers, "login", broken)
    start_login(client)
    with pytest.raises(KeyError):
        client.post("/verify/", {"code": last_code(outbox)})
