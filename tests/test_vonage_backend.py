"""The Verify v2 backend through the real SDK, over HTTPS, against the emulator."""

import base64
import logging
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from verification import get_backend
from verification.backends.base import CheckResult
from verification.backends.vonage import VerificationBackend
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

pytestmark = pytest.mark.django_db

OPERATOR_LOGGER = "verification.vonage"


@pytest.fixture
def backend(vonage_backend_settings):
    return get_backend()


def wrong(code):
    """Return a code of the same length that is not `code`."""
    return "".join("1" if digit != "1" else "2" for digit in code)


def operator_errors(caplog):
    return [
        record
        for record in caplog.records
        if record.name == OPERATOR_LOGGER and record.levelno == logging.ERROR
    ]


def test_start_sends_an_sms_then_a_call_with_the_configured_code(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    message = vonage_emulator.last_message(NUMBER)
    assert message.channel == "sms"
    assert len(message.code) == 6
    (call,) = vonage_emulator.calls("start")
    assert call.auth == "basic"
    assert call.params == {
        "brand": "Passwordless",
        "workflow": [
            {"channel": "sms", "to": "14155550100"},
            {"channel": "voice", "to": "14155550100"},
        ],
        "code_length": 6,
        # No automatic call (VERIFY_VOICE_FALLBACK_AFTER=0): the longest wait.
        "channel_timeout": 900,
    }
    assert vonage_emulator.state_of(request_id) == "IN PROGRESS"


def test_settings_reach_vonage(vonage_backend_settings, vonage_emulator):
    vonage_backend_settings.VERIFY_BRAND = "Acme"
    vonage_backend_settings.VERIFY_CODE_LENGTH = 8
    vonage_backend_settings.VERIFY_CODE_TTL = 120
    vonage_backend_settings.VERIFY_LOCALE = "en-gb"
    vonage_backend_settings.VERIFY_WORKFLOW = ["voice"]

    get_backend().start(NUMBER)

    params = vonage_emulator.calls("start")[0].params
    assert params["brand"] == "Acme"
    assert params["code_length"] == 8
    assert params["channel_timeout"] == 120
    assert params["locale"] == "en-gb"
    assert params["workflow"] == [{"channel": "voice", "to": "14155550100"}]
    assert len(vonage_emulator.last_code(NUMBER)) == 8


def test_constructor_arguments_override_settings_and_clamp_channel_timeout(
    vonage_backend_settings,
):
    backend = VerificationBackend(api_secret="other", code_ttl=2000, workflow=["sms"])
    assert backend.config.api_secret == "other"
    assert backend.channel_timeout == 900
    assert not backend.supports_next
    assert VerificationBackend(code_ttl=5, workflow=["sms"]).channel_timeout == 15
    assert VerificationBackend(voice_fallback_after=5).channel_timeout == 15
    assert VerificationBackend(voice_fallback_after=2000).channel_timeout == 900


def test_right_code_verifies_once(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)

    assert backend.check(request_id, code) == CheckResult(request_id=request_id)
    assert vonage_emulator.state_of(request_id) == "SUCCESS"
    with pytest.raises(VerificationExpired):
        backend.check(request_id, code)


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


def test_expired_request_is_expired_not_too_many_attempts(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    # Two channels of 900 s each: the request ends after 1800 s.
    vonage_emulator.advance(1801)

    with pytest.raises(VerificationExpired) as caught:
        backend.check(request_id, vonage_emulator.last_code(NUMBER))
    assert type(caught.value) is VerificationExpired


def test_second_start_to_a_live_number_names_the_live_request(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    with pytest.raises(ConcurrentVerification) as caught:
        backend.start(NUMBER)

    assert caught.value.request_id == request_id
    assert backend.start(OTHER_NUMBER) != request_id


def test_cancel_is_refused_in_the_first_30_seconds_then_works(backend, vonage_emulator):
    request_id = backend.start(NUMBER)

    with pytest.raises(ActionNotAllowed):
        backend.cancel(request_id)
    assert vonage_emulator.state_of(request_id) == "IN PROGRESS"

    vonage_emulator.advance(31)
    backend.cancel(request_id)
    assert vonage_emulator.state_of(request_id) == "CANCELLED"
    assert backend.start(NUMBER) != request_id


def test_cancel_is_refused_after_the_second_event(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.trigger_next(request_id)
    vonage_emulator.advance(31)

    with pytest.raises(ActionNotAllowed):
        backend.cancel(request_id)


def test_cancel_of_a_finished_request_says_it_is_over(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.check(request_id, vonage_emulator.last_code(NUMBER))

    with pytest.raises(VerificationExpired):
        backend.cancel(request_id)


def test_trigger_next_calls_with_a_new_code_once(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    sms_code = vonage_emulator.last_code(NUMBER)

    backend.trigger_next(request_id)
    call = vonage_emulator.last_message(NUMBER)
    assert call.channel == "voice"
    with pytest.raises(ActionNotAllowed):
        backend.trigger_next(request_id)
    # v2 sends a new code on each channel: the call's code is the one that works.
    if call.code != sms_code:
        with pytest.raises(IncorrectCode):
            backend.check(request_id, sms_code)
    assert backend.check(request_id, call.code).request_id == request_id


def test_trigger_next_on_a_finished_request_says_it_is_over(backend, vonage_emulator):
    request_id = backend.start(NUMBER)
    backend.check(request_id, vonage_emulator.last_code(NUMBER))

    with pytest.raises(VerificationExpired):
        backend.trigger_next(request_id)


def test_single_channel_workflow_has_no_next_channel(vonage_backend_settings):
    vonage_backend_settings.VERIFY_WORKFLOW = ["sms"]
    backend = get_backend()
    assert backend.supports_next is False

    request_id = backend.start(NUMBER)
    with pytest.raises(ActionNotAllowed):
        backend.trigger_next(request_id)


@pytest.mark.parametrize("reason", ["invalid", "unroutable", "blocked", "unsupported_network"])
def test_numbers_vonage_cannot_reach_are_invalid_numbers(backend, vonage_emulator, reason):
    vonage_emulator.refuse_number(NUMBER, reason)

    with pytest.raises(InvalidNumber):
        backend.start(NUMBER)
    assert vonage_emulator.messages == []


def test_a_number_the_sdk_refuses_never_reaches_vonage(backend, vonage_emulator):
    with pytest.raises(InvalidNumber):
        backend.start("+123")
    assert vonage_emulator.calls() == []


def test_rate_limited_by_vonage_is_throttled(backend, vonage_emulator):
    vonage_emulator.max_requests_per_second = 2
    backend.start(NUMBER)
    backend.start(OTHER_NUMBER)

    with pytest.raises(Throttled):
        backend.start("+14155550123")


def test_http_429_is_throttled(backend, vonage_emulator):
    vonage_emulator.fail(Fault.RATE_LIMITED)

    with pytest.raises(Throttled):
        backend.start(NUMBER)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.SERVER_ERROR,
        Fault.SERVICE_UNAVAILABLE,
        Fault.SLOW,
        Fault.DROP,
        Fault.REFUSE,
        Fault.NOT_JSON,
    ],
)
def test_upstream_failures_on_start_are_unavailable_and_start_nothing(
    backend, vonage_emulator, fault
):
    vonage_emulator.fail(fault)

    with pytest.raises(ProviderUnavailable):
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


def test_a_slow_answer_times_out_after_vonage_timeout(backend, vonage_emulator):
    vonage_emulator.fail(Fault.SLOW)

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    # VONAGE_TIMEOUT is 0.5 s; the emulator would hang for 2 s.
    assert time.monotonic() - started < 1.5
    assert client_for(backend.config).http_client.http_client_options.timeout == 0.5


def test_a_dropped_start_is_never_sent_again(backend, vonage_emulator):
    vonage_emulator.fail(Fault.DROP, on="start")

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    assert len(vonage_emulator.calls("start")) == 1


@pytest.mark.parametrize(
    ("fault", "what"),
    [
        (Fault.UNAUTHORIZED, "credentials refused"),
        (Fault.PAYMENT_REQUIRED, "low balance"),
        (Fault.FORBIDDEN, "forbidden"),
    ],
)
def test_account_problems_are_logged_for_the_operator(
    backend, vonage_emulator, caplog, fault, what
):
    vonage_emulator.fail(fault)

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)

    (record,) = operator_errors(caplog)
    message = record.getMessage()
    assert what in message
    assert "upstream_id=" in message and "upstream_id=-" not in message
    assert "+1 415 ••• ••00" in message
    assert "14155550100" not in message


def test_low_balance_is_unavailable_and_logged(backend, vonage_emulator, caplog):
    vonage_emulator.low_balance = True

    with pytest.raises(ProviderUnavailable):
        backend.start(NUMBER)
    assert "low balance" in operator_errors(caplog)[0].getMessage()


def test_a_wrong_secret_is_refused_and_never_logged(vonage_backend_settings, caplog):
    vonage_backend_settings.VONAGE_API_SECRET = "not-the-secret-4821"

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "credentials refused" in operator_errors(caplog)[0].getMessage()
    assert "not-the-secret-4821" not in caplog.text


def test_missing_credentials_are_logged_and_nothing_is_called(
    vonage_backend_settings, vonage_emulator, caplog
):
    vonage_backend_settings.VONAGE_API_KEY = ""

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "VONAGE_API_KEY" in operator_errors(caplog)[0].getMessage()
    assert vonage_emulator.calls() == []


def test_a_brand_the_sdk_refuses_is_a_configuration_error(
    vonage_backend_settings, vonage_emulator, caplog
):
    vonage_backend_settings.VERIFY_BRAND = "A brand far too long for Vonage"

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "(brand)" in operator_errors(caplog)[0].getMessage()
    assert vonage_emulator.calls() == []


def test_jwt_auth_with_the_pem_text(vonage_jwt_backend_settings, vonage_emulator):
    backend = get_backend()
    request_id = backend.start(NUMBER)

    assert vonage_emulator.calls("start")[0].auth == "jwt"
    assert backend.check(request_id, vonage_emulator.last_code(NUMBER)).request_id == request_id


@pytest.mark.parametrize("file_name", ["private.key", "vonage_private_key"])
def test_jwt_auth_with_a_path_to_the_key(
    vonage_jwt_backend_settings, vonage_emulator, tmp_path, file_name
):
    path = tmp_path / file_name
    path.write_text(vonage_emulator.private_key_pem)
    vonage_jwt_backend_settings.VONAGE_PRIVATE_KEY = str(path)

    get_backend().start(NUMBER)

    assert vonage_emulator.calls("start")[0].auth == "jwt"


def test_a_jwt_signed_with_another_key_is_refused(vonage_jwt_backend_settings, caplog):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    vonage_jwt_backend_settings.VONAGE_PRIVATE_KEY = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1: read as well
        serialization.NoEncryption(),
    ).decode()

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "credentials refused" in operator_errors(caplog)[0].getMessage()


def test_an_unreadable_private_key_is_logged_and_nothing_is_called(
    vonage_jwt_backend_settings, vonage_emulator, caplog, tmp_path
):
    vonage_jwt_backend_settings.VONAGE_PRIVATE_KEY = str(tmp_path / "missing.key")

    with pytest.raises(ProviderUnavailable):
        get_backend().start(NUMBER)

    assert "VONAGE_PRIVATE_KEY" in operator_errors(caplog)[0].getMessage()
    assert vonage_emulator.calls() == []


def test_each_thread_has_its_own_client_reused_across_requests(backend):
    mine = client_for(backend.config)
    assert client_for(get_backend().config) is mine

    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(client_for(backend.config)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine


def test_calls_from_many_threads_at_once_each_get_their_own_answer(
    vonage_backend_settings, vonage_emulator
):
    # A cache every thread can write to (the test database's is not shared).
    vonage_backend_settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    numbers = [f"+1415555{index:04d}" for index in range(300, 308)]
    barrier = threading.Barrier(len(numbers))
    results, clients, errors = {}, set(), []

    def verify(number):
        try:
            backend = get_backend()
            clients.add(id(client_for(backend.config)))
            barrier.wait()
            request_id = backend.start(number)
            code = vonage_emulator.last_code(number)
            try:
                backend.check(request_id, wrong(code))
            except IncorrectCode as exc:
                assert exc.attempts_left == 2
            results[number] = backend.check(request_id, code).request_id == request_id
        except Exception as exc:  # reported below, with the thread's number
            errors.append((number, exc))

    threads = [threading.Thread(target=verify, args=(number,)) for number in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results == dict.fromkeys(numbers, True)
    assert len(clients) == len(numbers)


def test_sdk_debug_logs_never_show_credentials_codes_or_numbers(backend, vonage_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    # Even a logger switched to DEBUG by hand goes back to INFO before a call.
    caplog.set_level(logging.DEBUG, logger="vonage")

    request_id = backend.start(NUMBER)
    code = vonage_emulator.last_code(NUMBER)
    with pytest.raises(IncorrectCode):
        backend.check(request_id, wrong(code))
    backend.check(request_id, code)

    basic = base64.b64encode(
        f"{vonage_emulator.api_key}:{vonage_emulator.api_secret}".encode()
    ).decode()
    for secret in (vonage_emulator.api_secret, basic, code, wrong(code), "14155550100"):
        assert secret not in caplog.text
    # The SDK's own warning about the wrong code was captured: capture works.
    assert any(record.name == "vonage" for record in caplog.records)
    for name in SDK_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO
