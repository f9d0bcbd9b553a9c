"""The verification log: one row per event of the web flow, whatever the outcome."""

import logging
from decimal import Decimal

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection, transaction
from django.test import Client

from accounts.models import User
from verification import CheckResult, get_backend
from verification.backends.locmem import VerificationBackend as LocmemBackend
from verification.exceptions import ProviderUnavailable
from verificationlog.events import verification_event
from verificationlog.models import Outcome, Purpose, VerificationLog

from .conftest import NUMBER, OTHER_NUMBER, last_code, pending, start_login
from .factories import UserFactory

pytestmark = pytest.mark.django_db

THIS_MODULE = __name__


class UnavailableBackend(LocmemBackend):
    """A provider that cannot be reached: every start fails."""

    def start(self, number):
        raise ProviderUnavailable("connection timed out")


class CheckUnavailableBackend(LocmemBackend):
    """Sends codes, then cannot be reached when a code is checked."""

    def check(self, request_id, code):
        raise ProviderUnavailable("connection timed out")


class PricedBackend(LocmemBackend):
    """Reports a price on a right code, as Vonage Verify v1 does."""

    def check(self, request_id, code):
        result = super().check(request_id, code)
        return CheckResult(request_id=result.request_id, price="0.05000000", currency="EUR")


def wrong(code):
    return f"{(int(code[0]) + 1) % 10}{code[1:]}"


def rows():
    return list(VerificationLog.objects.order_by("created_at", "pk"))


def outcomes():
    return [row.outcome for row in rows()]


def verify(client, code):
    return client.post("/verify/", {"code": code})


def test_a_sent_code_writes_a_started_row(client):
    start_login(client)

    (row,) = rows()
    assert row.outcome == Outcome.STARTED
    assert row.purpose == Purpose.LOGIN
    assert row.number == NUMBER
    assert row.backend == "locmem"
    assert row.request_id == pending(client)["request_id"]
    assert row.ip == "127.0.0.1"
    assert row.price is None
    assert row.user is None


def test_a_right_code_writes_a_succeeded_row_without_price_on_locmem(client, outbox):
    start_login(client)
    response = verify(client, last_code(outbox))

    assert response.status_code == 302
    assert outcomes() == [Outcome.STARTED, Outcome.SUCCEEDED]
    succeeded = rows()[-1]
    assert succeeded.request_id == rows()[0].request_id
    assert succeeded.price is None
    assert succeeded.currency == ""


def test_rows_name_the_user_who_owns_the_number(client, outbox, user):
    start_login(client)
    verify(client, last_code(outbox))

    assert [row.user for row in rows()] == [user, user]


def test_the_price_reported_by_the_backend_is_kept(client, outbox, settings):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.PricedBackend"
    start_login(client)
    verify(client, last_code(outbox))

    succeeded = rows()[-1]
    assert succeeded.outcome == Outcome.SUCCEEDED
    assert succeeded.price == Decimal("0.05")
    assert succeeded.currency == "EUR"


def test_a_wrong_code_writes_a_wrong_code_row(client, outbox):
    start_login(client)
    verify(client, wrong(last_code(outbox)))

    assert outcomes() == [Outcome.STARTED, Outcome.WRONG_CODE]
    assert rows()[-1].detail == "16"
    assert rows()[-1].request_id == pending(client)["request_id"]


def test_a_request_the_provider_ended_writes_an_expired_row(client, outbox):
    start_login(client)
    # Verified or cancelled elsewhere: the provider no longer knows it.
    get_backend().cancel(pending(client)["request_id"])

    response = verify(client, last_code(outbox))

    assert response["Location"] == "/login/"
    assert outcomes() == [Outcome.STARTED, Outcome.EXPIRED]
    assert rows()[-1].detail == "6"


def test_a_third_wrong_code_writes_a_too_many_attempts_row(client, outbox):
    start_login(client)
    bad = wrong(last_code(outbox))
    for _ in range(3):
        verify(client, bad)

    assert outcomes() == [
        Outcome.STARTED,
        Outcome.WRONG_CODE,
        Outcome.WRONG_CODE,
        Outcome.TOO_MANY_ATTEMPTS,
    ]
    assert rows()[-1].detail == "17"


def test_cancel_writes_a_cancelled_row(client):
    start_login(client)
    request_id = pending(client)["request_id"]
    client.post("/verify/cancel/")

    assert outcomes() == [Outcome.STARTED, Outcome.CANCELLED]
    assert rows()[-1].request_id == request_id


def test_a_start_over_the_limit_writes_a_rate_limited_row(client, settings, outbox):
    settings.VERIFY_RATE_START_PER_IP = "1/15m"
    start_login(client)
    response = start_login(client, OTHER_NUMBER)

    assert response.status_code == 429
    assert outcomes() == [Outcome.STARTED, Outcome.RATE_LIMITED]
    limited = rows()[-1]
    assert limited.number == OTHER_NUMBER
    assert limited.ip == "127.0.0.1"
    assert [message.number for message in outbox] == [NUMBER]


def test_a_check_over_the_limit_writes_a_rate_limited_row(client, settings, outbox):
    settings.VERIFY_RATE_CHECK_PER_SESSION = "1/5m"
    start_login(client)
    code = last_code(outbox)
    verify(client, wrong(code))
    response = verify(client, code)

    assert response.status_code == 429
    assert outcomes() == [Outcome.STARTED, Outcome.WRONG_CODE, Outcome.RATE_LIMITED]
    assert rows()[-1].request_id == pending(client)["request_id"]


def test_a_provider_down_at_start_writes_an_upstream_error_row(client, settings):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.UnavailableBackend"
    response = start_login(client)

    assert response.status_code == 200
    (row,) = rows()
    assert row.outcome == Outcome.UPSTREAM_ERROR
    assert row.backend == "test_verification_log"
    assert row.detail == "5"
    assert row.request_id == ""


def test_a_provider_down_at_check_writes_an_upstream_error_row(client, settings, outbox):
    settings.VERIFICATION_BACKEND = f"{THIS_MODULE}.CheckUnavailableBackend"
    start_login(client)
    verify(client, last_code(outbox))

    assert outcomes() == [Outcome.STARTED, Outcome.UPSTREAM_ERROR]
    assert rows()[-1].request_id == pending(client)["request_id"]


def test_a_second_session_for_a_live_number_adopts_it_without_a_row(client):
    start_login(client)
    start_login(Client())

    # Nothing was sent the second time: no event, and conversion stays true.
    assert outcomes() == [Outcome.STARTED]


def test_a_second_session_for_another_step_writes_a_refused_row(client, user):
    start_login(client, user.phone_number_for_2fa)
    other = Client()
    other.force_login(user)
    other.post("/account/2fa/disable/")

    assert outcomes() == [Outcome.STARTED, Outcome.REFUSED]
    assert rows()[-1].detail == "concurrent"


def test_a_decoy_start_is_logged_without_a_request_id(client, settings, outbox):
    settings.PASSWORDLESS_SIGNUP = False
    start_login(client)

    (row,) = rows()
    assert row.outcome == Outcome.STARTED
    assert row.detail == "decoy"
    assert row.request_id == ""
    assert outbox == []


def test_the_log_line_masks_the_number_and_never_holds_the_code(client, outbox, caplog):
    caplog.set_level(logging.INFO, logger="verificationlog")
    start_login(client)
    code = last_code(outbox)
    verify(client, wrong(code))
    verify(client, code)

    lines = [r.getMessage() for r in caplog.records if r.name.startswith("verificationlog")]
    events = [line for line in lines if line.startswith("verification event=")]
    assert len(events) == 3
    assert "number=+1 415 ••• ••00" in events[0]
    assert all(NUMBER not in line and code not in line for line in lines)


def _make_log_inserts_fail():
    # A real database error on every insert, reads untouched, until the
    # test's transaction rolls back.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_log() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_log_rows BEFORE INSERT ON accounts_verificationlog "
                "FOR EACH ROW EXECUTE FUNCTION refuse_log()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_log_rows BEFORE INSERT ON accounts_verificationlog "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )


def test_a_failing_log_write_does_not_break_a_login(client, outbox, caplog):
    _make_log_inserts_fail()
    start_login(client)
    response = verify(client, last_code(outbox))

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert SESSION_KEY in client.session
    assert User.objects.filter(phone_number_for_2fa=NUMBER).exists()
    failures = [
        r.getMessage() for r in caplog.records if "could not write the verification log" in r.msg
    ]
    assert len(failures) == 2
    assert all(NUMBER not in line for line in failures)


def test_a_failing_log_write_leaves_the_surrounding_transaction_usable():
    _make_log_inserts_fail()
    with transaction.atomic():
        verification_event(None, outcome=Outcome.STARTED, purpose=Purpose.API, number=NUMBER)
        # Without a savepoint around the insert, Django would refuse any
        # further query in this block (TransactionManagementError).
        user = UserFactory()
    assert User.objects.filter(pk=user.pk).exists()


def test_a_deleted_user_is_not_referenced():
    verification_event(
        None, outcome=Outcome.STARTED, purpose=Purpose.API, number=NUMBER, user_id=987654
    )

    (row,) = rows()
    assert row.user_id is None
    assert row.ip is None


def test_api_events_are_written_with_their_purpose(rf):
    request = rf.post("/api/verify/", REMOTE_ADDR="198.51.100.4")
    verification_event(
        request,
        outcome=Outcome.SUCCEEDED,
        purpose=Purpose.API,
        number=NUMBER,
        backend="locmem",
        request_id="abc",
        price="0.10000000",
        currency="eur",
    )

    (row,) = rows()
    assert (row.purpose, row.ip, row.price, row.currency) == (
        Purpose.API,
        "198.51.100.4",
        Decimal("0.1"),
        "EUR",
    )


def test_a_phone_number_object_is_recorded_as_e164(user):
    verification_event(
        None,
        outcome=Outcome.STARTED,
        purpose=Purpose.API,
        number=user.phone_number_for_2fa,
        user_id=user.pk,
    )

    (row,) = rows()
    assert (row.number, row.user) == (NUMBER, user)
