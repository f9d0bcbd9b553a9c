"""The Verify v1 (legacy) backend through the real SDK, over HTTPS, against the emulator."""

import base64
import logging
import threading
import time

import pytest

from verification import get_backend
from verification.backends.base import CheckResult, SearchResult
from verification.backends.vonage_client import SDK_LOGGERS, client_for
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

from .conftest import NUMBER, OTHER_NUMBER
from .emulator import Fault
from .test_vonage_backend import OPERATOR_LOGGER, operator_errors, wrong

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(vonage_legacy_backend_settings):
    return get_backend()


def test_start_sends_the_configured_request(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    (call,) = vonage_emulator.calls("start")
    assert call.auth == "basic"
    assert call.params == {
        "number": "14155550100",
        "brand": "Passwordless",
        "code_length": "6",
        # No automatic call (VERIFY_VOICE_FALLBACK_AFTER=0): the longest
        # wait, and the code lives as long, since v1 wants a multiple of it.
        "pin_expiry": "900",
        "next_event_wait": "900",
        "workflow_id": "1",
    }
    message = vonage_emulator.last_message(NUMBER)
    assert (message.channel, len(message.code)) == ("sms", 6)
    assert vonage_emulator.state_of(request_id) == "IN PROGRESS"


def test_settings_reach_vonage(vonage_legacy_backend_settings, vonage_emulator):
    vonage_legacy_backend_settings.VERIFY_CODE_LENGTH = 4
    vonage_legacy_backend_settings.VERIFY_CODE_TTL = 120
    vonage_legacy_backend_settings.VERIFY_LEGACY_WORKFLOW_ID = 6
    vonage_legacy_backend_settings.VERIFY_LOCALE = "en-gb"
    backend = get_backend()

    backend.start(NUMBER)

    params = vonage_emulator.calls("start")[0].params
    assert (params["code_length"], params["pin_expiry"]) == ("4", "120")
    assert (params["workflow_id"], params["lg"]) == ("6", "en-gb")
    assert len(vonage_emulator.last_code(NUMBER)) == 4
    # Workflow 6 is one SMS: no call to offer.
    assert backend.supports_next is False


def test_a_code_length_v1_does_not_take_is_a_configuration_error(
    vonage_legacy_backend_settings, vonage_emulator, caplog
):
    vonage_legacy_backend_settings.VERIFY_CODE_LENGTH = 8

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "(code_length)" in operator_errors(caplog)[0].getMessage()
    assert vonage_emulator.calls() == []


def test_right_code_verifies_once_with_event_and_price(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    message = vonage_emulator.last_message(NUMBER)

    result = backend.check(request_id, message.code)

    assert result == CheckResult(
        request_id=request_id, event_id=message.event_id, price="0.10000000", currency="EUR"
    )
    with pytest.raises(VerificationExpired):
        backend.check(request_id, message.code)


def test_wrong_codes_count_down_then_the_third_kills_the_request(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)

    with pytest.raises(IncorrectCode) as first:
        backend.check(request_id, wrong(code))
    with pytest.raises(IncorrectCode) as second:
        backend.check(request_id, wrong(code))
    with pytest.raises(TooManyAttempts):
        backend.check(request_id, wrong(code))

    assert (first.value.attempts_left, second.value.attempts_left) == (2, 1)
    assert vonage_emulator.state_of(request_id) == "FAILED"
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


def test_expired_code(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    vonage_emulator.advance(901)

    with pytest.raises(VerificationExpired):
        backend.check(request_id, vonage_emulator.last_code(NUMBER))
    assert vonage_emulator.state_of(request_id) == "EXPIRED"


def test_second_start_to_a_live_number_names_the_live_request(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    with pytest.raises(ConcurrentVerification) as caught:
        backend.start(NUMBER)

    assert caught.value.request_id == request_id
    backend.start(OTHER_NUMBER)


def test_cancel_is_refused_in_the_first_30_seconds_then_works(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    with pytest.raises(ActionNotAllowed):
        backend.cancel(request_id)

    vonage_emulator.advance(31)
    backend.cancel(request_id)
    assert vonage_emulator.state_of(request_id) == "CANCELLED"
    backend.start(NUMBER)


def test_cancel_is_refused_after_the_second_event(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.trigger_next(request_id)
    vonage_emulator.advance(31)
    assert vonage_emulator.last_message(NUMBER).channel == "voice"

    with pytest.raises(ActionNotAllowed):
        backend.cancel(request_id)


def test_cancel_of_a_finished_request_says_it_is_over(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.check(request_id, vonage_emulator.last_code(NUMBER))

    with pytest.raises(VerificationExpired):
        backend.cancel(request_id)


def test_trigger_next_calls_with_the_same_code_until_no_event_is_left(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)

    backend.trigger_next(request_id)
    backend.trigger_next(request_id)
    with pytest.raises(ActionNotAllowed):
        backend.trigger_next(request_id)

    calls = vonage_emulator.messages[1:]
    assert [(message.channel, message.code) for message in calls] == [("voice", code)] * 2
    assert backend.check(request_id, code).request_id == request_id


def test_trigger_next_on_a_finished_request_says_it_is_over(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.check(request_id, vonage_emulator.last_code(NUMBER))

    with pytest.raises(VerificationExpired):
        backend.trigger_next(request_id)


def test_search_reports_status_price_and_events_but_no_codes(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.trigger_next(request_id)
    assert backend.search(request_id).status == "IN PROGRESS"

    backend.check(request_id, vonage_emulator.last_code(NUMBER))
    result = backend.search(request_id)

    assert result == SearchResult(
        request_id=request_id,
        status="SUCCESS",
        number="14155550100",
        price="0.10000000",
        currency="EUR",
        events=[
            {"type": "sms", "id": vonage_emulator.messages[0].event_id},
            {"type": "tts", "id": vonage_emulator.messages[1].event_id},
        ],
    )
    assert vonage_emulator.last_code(NUMBER) not in repr(result)


def test_search_for_an_unknown_request_says_it_is_over(backend, vonage_emulator):
    with pytest.raises(VerificationExpired):
        backend.search("0" * 32)


@pytest.mark.parametrize("reason", ["invalid", "unroutable", "blocked", "unsupported_network"])
def test_numbers_vonage_cannot_reach_are_invalid_numbers(backend, vonage_emulator, reason):
    vonage_emulator.refuse_number(NUMBER, reason)

    with pytest.raises(InvalidNumber):
        backend.start(NUMBER)
    assert vonage_emulator.messages == []


def test_a_blocked_number_warns_the_operator(backend, vonage_emulator, caplog):
    vonage_emulator.refuse_number(NUMBER, "blocked")

    with pytest.raises(InvalidNumber):
        backend.start(NUMBER)

    (record,) = [r for r in caplog.records if r.name == OPERATOR_LOGGER]
    assert record.levelno == logging.WARNING
    assert "blocked" in record.getMessage() and "network 244523" in record.getMessage()


def test_a_number_the_sdk_refuses_never_reaches_vonage(backend, vonage_emulator):
    with pytest.raises(InvalidNumber):
        backend.start("+123")
    assert vonage_emulator.calls() == []


def test_vonage_throttle_is_throttled(backend, vonage_emulator):
    vonage_emulator.max_requests_per_second = 2
    backend.start(NUMBER)
    backend.start(OTHER_NUMBER)

    with pytest.raises(Throttled):
        backend.start("+14155550123")


def test_a_wrong_secret_is_refused_and_never_logged(vonage_legacy_backend_settings, caplog):
    vonage_legacy_backend_settings.VONAGE_API_SECRET = "not-the-secret-4821"

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "invalid credentials" in operator_errors(caplog)[0].getMessage()
    assert "not-the-secret-4821" not in caplog.text


def test_no_quota_left_is_unavailable_and_logged(backend, vonage_emulator, caplog):
    vonage_emulator.low_balance = True

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    message = operator_errors(caplog)[0].getMessage()
    assert "partner quota exceeded" in message and "status=9" in message


def test_missing_credentials_are_logged_and_nothing_is_called(
    vonage_legacy_backend_settings, vonage_emulator, caplog
):
    # The application id and key are for v2: v1 still needs the key and secret.
    vonage_legacy_backend_settings.VONAGE_API_SECRET = ""
    vonage_legacy_backend_settings.VONAGE_APPLICATION_ID = vonage_emulator.application_id
    vonage_legacy_backend_settings.VONAGE_PRIVATE_KEY = vonage_emulator.private_key_pem

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "VONAGE_API_SECRET" in operator_errors(caplog)[0].getMessage()
    assert vonage_emulator.calls() == []


# Every v1 status a start can answer, as Vonage sends it (HTTP 200, `status`).
START_STATUSES = [
    ("1", Throttled, False),
    ("2", ProviderUnavailable, True),
    ("3", InvalidNumber, False),  # "Invalid value for number"
    ("4", ProviderUnavailable, True),
    ("5", ProviderUnavailable, False),
    ("6", InvalidNumber, False),
    ("7", InvalidNumber, False),
    ("8", ProviderUnavailable, True),
    ("9", ProviderUnavailable, True),
    ("10", ConcurrentVerification, False),
    ("15", InvalidNumber, False),
    ("20", ProviderUnavailable, True),
    ("29", ProviderUnavailable, True),
    ("99", ProviderUnavailable, True),  # undocumented: the operator must look
]


@pytest.mark.parametrize(("status", "exception", "operator_error"), START_STATUSES)
def test_each_start_status(backend, vonage_emulator, caplog, status, exception, operator_error):
    vonage_emulator.fail(Fault.LEGACY_STATUS, status=status)

    with pytest.raises(exception):
        backend.start(NUMBER)

    assert bool(operator_errors(caplog)) is operator_error


@pytest.mark.parametrize(
    ("operation", "status", "exception"),
    [
        ("check", "1", Throttled),
        ("check", "4", ProviderUnavailable),
        ("check", "5", ProviderUnavailable),
        ("check", "6", VerificationExpired),
        ("check", "16", IncorrectCode),
        ("check", "17", TooManyAttempts),
        ("cancel", "6", VerificationExpired),
        ("cancel", "19", ActionNotAllowed),
        ("next", "6", VerificationExpired),
        ("next", "19", ActionNotAllowed),
        ("search", "101", VerificationExpired),
        ("search", "4", ProviderUnavailable),
    ],
)
def test_each_status_after_the_start(backend, vonage_emulator, operation, status, exception):
    request_id = backend.start(NUMBER)
    vonage_emulator.fail(Fault.LEGACY_STATUS, on=operation, status=status)
    call = {
        "check": lambda: backend.check(request_id, "123456"),
        "cancel": lambda: backend.cancel(request_id),
        "next": lambda: backend.trigger_next(request_id),
        "search": lambda: backend.search(request_id),
    }[operation]

    with pytest.raises(exception):
        call()


@pytest.mark.parametrize(
    ("fault", "exception"),
    [
        (Fault.RATE_LIMITED, Throttled),
        (Fault.UNAUTHORIZED, ProviderUnavailable),
        (Fault.SERVER_ERROR, ProviderUnavailable),
        (Fault.SERVICE_UNAVAILABLE, ProviderUnavailable),
        (Fault.SLOW, ProviderUnavailable),
        (Fault.DROP, ProviderUnavailable),
        (Fault.REFUSE, ProviderUnavailable),
        (Fault.NOT_JSON, ProviderUnavailable),
    ],
)
def test_upstream_failures_on_start(backend, vonage_emulator, fault, exception):
    vonage_emulator.fail(fault)

    with pytest.raises(exception):
        backend.start(NUMBER)

    vonage_emulator.heal()
    assert vonage_emulator.messages == []
    backend.start(NUMBER)


@pytest.mark.parametrize(
    "fault", [Fault.SERVER_ERROR, Fault.SLOW, Fault.DROP, Fault.REFUSE, Fault.NOT_JSON]
)
def test_upstream_failures_on_check_keep_the_code_good(backend, vonage_emulator, fault):
    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)
    vonage_emulator.fail(fault, on=None if fault is Fault.REFUSE else "check")

    with pytest.raises(ProviderUnavailable):
        backend.check(request_id, code)

    vonage_emulator.heal()
    assert backend.check(request_id, code).request_id == request_id


def test_http_401_from_the_gateway_is_logged_for_the_operator(backend, vonage_emulator, caplog):
    vonage_emulator.fail(Fault.UNAUTHORIZED)

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    message = operator_errors(caplog)[0].getMessage()
    assert "credentials refused" in message and "http_status=401" in message


def test_a_slow_answer_times_out_after_vonage_timeout(backend, vonage_emulator):
    vonage_emulator.fail(Fault.SLOW)

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        backend.check("0" * 32, "123456")

    assert time.monotonic() - started < 1.5
    assert client_for(backend.config).http_client.http_client_options.timeout == 0.5


def test_a_dropped_start_is_never_sent_again(backend, vonage_emulator):
    vonage_emulator.fail(Fault.DROP, on="start")

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    assert len(vonage_emulator.calls("start")) == 1


def test_concurrent_threads_each_read_their_own_answer(
    vonage_legacy_backend_settings, vonage_emulator
):
    # v1 errors are read from the client's last response: a client shared
    # between threads would hand one thread another's answer.
    vonage_legacy_backend_settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    numbers = [f"+1415555{index:04d}" for index in range(400, 408)]
    starts = {number: get_backend().start(number) for number in numbers}
    barrier = threading.Barrier(len(numbers))
    outcomes, errors = {}, []

    def check(index, number):
        try:
            backend = get_backend()
            code = vonage_emulator.last_code(number)
            barrier.wait()
            # Half the threads type the right code, half a wrong one, at once.
            try:
                backend.check(starts[number], code if index % 2 else wrong(code))
                outcomes[number] = "right"
            except IncorrectCode:
                outcomes[number] = "wrong"
        except Exception as exc:  # reported below, with the thread's number
            errors.append((number, exc))

    threads = [
        threading.Thread(target=check, args=(index, number)) for index, number in enumerate(numbers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert outcomes == {
        number: "right" if index % 2 else "wrong" for index, number in enumerate(numbers)
    }


def test_sdk_debug_logs_never_show_credentials_codes_or_numbers(backend, vonage_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="vonage")

    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)
    with pytest.raises(IncorrectCode):
        backend.check(request_id, wrong(code))
    backend.check(request_id, code)
    backend.search(request_id)

    basic = base64.b64encode(
        f"{vonage_emulator.api_key}:{vonage_emulator.api_secret}".encode()
    ).decode()
    for secret in (vonage_emulator.api_secret, basic, code, wrong(code), "14155550100"):
        assert secret not in caplog.text
    for name in SDK_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO
