"""The sweep: requests whose code died on the site unused are cancelled upstream (issue 15).

Logins go through the pages (Django's test client), Vonage Verify v2 is the
emulator behind the real SDK, and time_machine moves the clock of the site
and of the emulator together.
"""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.models import User
from flows.abandoned import GRACE, WINDOW, SweepResult, verification_sweep
from verification.backends.vonage import VerificationBackend as VonageBackend
from verificationlog.models import DECOY_DETAIL, Outcome, Purpose, VerificationLog

from .conftest import NUMBER, OTHER_NUMBER, last_code, start_login
from .embedded_default import embedded_default_env, manage
from .emulator import Fault

pytestmark = pytest.mark.django_db

NOTHING = SweepResult()


@pytest.fixture
def clock(time_machine):
    """Stop the clock now; tests move it with `clock.shift(seconds)`."""
    time_machine.move_to(datetime.datetime.now(datetime.UTC), tick=False)
    return time_machine


@pytest.fixture
def roomy(settings):
    """Limits wide enough for several logins from one test client."""
    for name in (
        "VERIFY_RATE_START_PER_IP",
        "VERIFY_RATE_START_PER_NUMBER",
        "VERIFY_RATE_CHECK_PER_SESSION",
        "VERIFY_RATE_CHECK_PER_IP",
        "VERIFY_PREFIX_RATE",
    ):
        setattr(settings, name, "1000/h")
    return settings


@pytest.fixture
def emulator(vonage_backend_settings, vonage_emulator, roomy):
    """Vonage Verify v2 (sms, then voice on request) behind the real SDK."""
    return vonage_emulator


@pytest.fixture(params=["locmem", "vonage"])
def provider(request, roomy):
    """Each backend in turn: locmem (the tests' default) and Vonage v2 on the emulator."""
    if request.param == "vonage":
        return request.getfixturevalue("emulator")
    return None


def code_dead(settings) -> int:
    """Seconds after a start when the sweep of the next cron minute looks at it."""
    return settings.VERIFY_CODE_TTL + 60


def started_id(number=NUMBER) -> str:
    """Return the upstream request id of the last start to `number`, from the log."""
    row = (
        VerificationLog.objects.filter(number=number, outcome=Outcome.STARTED)
        .exclude(request_id="")
        .order_by("-created_at", "-pk")
        .first()
    )
    assert row is not None, f"no start logged for {number}"
    return row.request_id


def swept_rows():
    return list(
        VerificationLog.objects.filter(detail__startswith="abandoned", ip=None).order_by("pk")
    )


def cancels(emulator) -> list[str]:
    """Return the request ids the emulator was asked to cancel, in order."""
    return [call.path.rsplit("/", 1)[1] for call in emulator.calls("cancel")]


def channels_to(emulator, number=NUMBER) -> list[str]:
    return [message.channel for message in emulator.messages if message.number == number]


# A login left --------------------------------------------------------------------


def test_a_login_left_is_cancelled_upstream_once_its_code_is_dead(
    client, emulator, clock, settings
):
    start_login(client)
    request_id = started_id()

    clock.shift(code_dead(settings))
    result = verification_sweep()

    assert result == SweepResult(cancelled=1)
    assert emulator.state_of(request_id) == "CANCELLED"
    [row] = swept_rows()
    assert (row.outcome, row.detail) == (Outcome.CANCELLED, "abandoned")
    assert (row.purpose, row.number, row.request_id) == (Purpose.LOGIN, NUMBER, request_id)
    assert (row.backend, row.user_id) == ("vonage", None)  # nobody has the number yet
    # Vonage's workflow is over: the call it would have placed after 15 minutes never comes.
    clock.shift(3600)
    assert channels_to(emulator) == ["sms"]


def test_without_the_sweep_the_phone_rings_after_fifteen_minutes(client, emulator, clock):
    # What the sweep prevents, on the same emulator: Vonage calls by itself.
    start_login(client)

    clock.shift(901)

    assert channels_to(emulator) == ["sms", "voice"]


def test_a_second_factor_left_keeps_its_purpose_and_user(client, emulator, clock, settings):
    user = User.objects.create_user("ann", password="correct horse", phone_number_for_2fa=NUMBER)
    user.is_2fa_enabled = True
    user.save()
    client.post("/login/password/", {"username": "ann", "password": "correct horse"})
    request_id = started_id()

    clock.shift(code_dead(settings))
    verification_sweep()

    [row] = swept_rows()
    assert (row.purpose, row.user_id, row.request_id) == (
        Purpose.SECOND_FACTOR,
        user.pk,
        request_id,
    )
    assert emulator.state_of(request_id) == "CANCELLED"


def test_the_sweep_cancels_once(client, emulator, clock, settings):
    start_login(client)
    clock.shift(code_dead(settings))

    first = verification_sweep()
    clock.shift(60)
    second = verification_sweep()

    assert (first, second) == (SweepResult(cancelled=1), NOTHING)
    assert cancels(emulator) == [started_id()]
    assert len(swept_rows()) == 1


def test_with_the_local_backend_a_login_left_is_recorded_as_over_once(client, roomy, clock):
    # The local backends forget a request when its code dies: the sweep finds
    # it over, records that, and never asks again.
    start_login(client)
    clock.shift(code_dead(roomy))

    first = verification_sweep()
    second = verification_sweep()

    assert (first, second) == (SweepResult(over=1), NOTHING)
    [row] = swept_rows()
    assert (row.outcome, row.detail, row.request_id) == (
        Outcome.EXPIRED,
        "abandoned 6",
        started_id(),
    )


def test_a_login_left_after_asking_for_the_call_is_recorded_as_over(
    client, emulator, clock, settings
):
    # Vonage refuses to cancel once the call is made: nothing left to stop.
    start_login(client)
    clock.shift(31)
    client.post("/verify/call/")
    assert channels_to(emulator) == ["sms", "voice"]

    clock.shift(code_dead(settings) + 60)
    first = verification_sweep()
    second = verification_sweep()

    assert (first, second) == (SweepResult(over=1), NOTHING)
    [row] = swept_rows()
    assert (row.outcome, row.detail) == (Outcome.EXPIRED, "abandoned 19")
    assert cancels(emulator) == [started_id()]


# Left alone -----------------------------------------------------------------------


def assert_left_alone(result, provider):
    assert result == NOTHING
    assert swept_rows() == []
    if provider is not None:
        assert cancels(provider) == []


def test_a_finished_login_is_left_alone(client, provider, clock, settings, outbox):
    start_login(client)
    code = provider.last_code(NUMBER) if provider else last_code(outbox)
    response = client.post("/verify/", {"code": code})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session

    clock.shift(code_dead(settings))

    assert_left_alone(verification_sweep(), provider)


def test_a_cancelled_login_is_left_alone(client, provider, clock, settings):
    start_login(client)
    clock.shift(31)  # Vonage refuses a cancel in the first 30 seconds
    client.post("/verify/cancel/")
    calls_before = cancels(provider) if provider else []

    clock.shift(code_dead(settings))
    result = verification_sweep()

    assert result == NOTHING
    assert swept_rows() == []
    if provider is not None:
        assert cancels(provider) == calls_before


def test_a_decoy_is_left_alone(client, provider, clock, settings):
    settings.PASSWORDLESS_SIGNUP = False
    start_login(client, OTHER_NUMBER)  # nobody has this number: nothing is sent
    assert VerificationLog.objects.filter(detail=DECOY_DETAIL).exists()

    clock.shift(code_dead(settings))

    assert_left_alone(verification_sweep(), provider)


def test_a_login_whose_code_still_works_is_left_alone(client, provider, clock, settings):
    start_login(client)

    clock.shift(settings.VERIFY_CODE_TTL - 1)
    early = verification_sweep()
    assert_left_alone(early, provider)

    clock.shift(61)
    assert verification_sweep() != NOTHING


class CronFiresDuringTheCheck(VonageBackend):
    """Vonage answers a check in 5 seconds, and the cron sweep runs meanwhile."""

    clock = None
    swept: SweepResult | None = None

    @property
    def name(self):
        return "vonage"

    def check(self, request_id, code):
        CronFiresDuringTheCheck.clock.shift(5)
        CronFiresDuringTheCheck.swept = verification_sweep()
        return super().check(request_id, code)


def test_a_code_typed_in_its_last_second_is_not_cancelled_on_its_way(
    client, emulator, clock, settings
):
    start_login(client)
    code = emulator.last_code(NUMBER)
    settings.VERIFICATION_BACKEND = f"{__name__}.CronFiresDuringTheCheck"
    CronFiresDuringTheCheck.clock = clock

    clock.shift(settings.VERIFY_CODE_TTL - 1)
    response = client.post("/verify/", {"code": code})

    assert CronFiresDuringTheCheck.swept == NOTHING
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_a_login_older_than_the_window_is_left_alone(client, provider, clock, settings):
    # Over at Vonage long ago: no call to ask about it.
    start_login(client)

    clock.shift(settings.VERIFY_CODE_TTL + (GRACE + WINDOW).total_seconds() + 1)

    assert_left_alone(verification_sweep(), provider)


def test_a_resend_leaves_only_the_new_request_to_cancel(client, emulator, clock, settings):
    # The resend cancelled the old request and logged only the new one.
    start_login(client)
    old = started_id()
    clock.shift(31)
    client.post("/verify/resend/")
    new = started_id()
    assert new != old

    clock.shift(code_dead(settings))
    result = verification_sweep()

    assert result == SweepResult(cancelled=1)
    assert cancels(emulator) == [old, new]  # the resend's, then the sweep's
    assert [row.request_id for row in swept_rows()] == [new]


# The provider fails -----------------------------------------------------------------


def test_a_request_the_provider_cannot_cancel_now_is_tried_again_next_run(
    client, emulator, clock, settings
):
    start_login(client)
    request_id = started_id()
    clock.shift(code_dead(settings))
    emulator.fail(Fault.SERVER_ERROR, on="cancel", times=1)

    failed = verification_sweep()
    assert failed == SweepResult(failed=1)
    assert swept_rows() == []
    assert emulator.state_of(request_id) == "IN PROGRESS"

    clock.shift(60)
    retried = verification_sweep()

    assert retried == SweepResult(cancelled=1)
    assert emulator.state_of(request_id) == "CANCELLED"


def test_a_provider_that_is_down_stops_the_run_after_three_failures(emulator, clock, settings):
    numbers = [f"+1415555{n:04d}" for n in range(101, 106)]
    for number in numbers:
        start_login(Client(), number)
    clock.shift(code_dead(settings))
    emulator.fail(Fault.SERVICE_UNAVAILABLE, on="cancel")

    down = verification_sweep()
    assert down == SweepResult(failed=3)
    assert len(emulator.calls("cancel")) == 3

    emulator.heal()
    clock.shift(60)
    back = verification_sweep()

    assert back == SweepResult(cancelled=5)
    assert {emulator.state_of(started_id(number)) for number in numbers} == {"CANCELLED"}


# One sweep at a time ------------------------------------------------------------------


class SweepAgainWhileCancelling(VonageBackend):
    """Starts a second sweep during its first cancel, as cron on another app server would."""

    second: SweepResult | None = None

    @property
    def name(self):
        return "vonage"

    def cancel(self, request_id):
        if SweepAgainWhileCancelling.second is None:
            SweepAgainWhileCancelling.second = verification_sweep()
        super().cancel(request_id)


def test_two_sweeps_at_once_cancel_once(client, emulator, clock, settings):
    start_login(client)
    clock.shift(code_dead(settings))
    SweepAgainWhileCancelling.second = None

    first = verification_sweep(backend=SweepAgainWhileCancelling())

    assert first == SweepResult(cancelled=1)
    assert SweepAgainWhileCancelling.second == SweepResult(busy=True)
    assert cancels(emulator) == [started_id()]
    assert len(swept_rows()) == 1


def test_the_lock_is_given_back_after_a_run(client, emulator, clock, settings):
    verification_sweep()
    start_login(client)
    clock.shift(code_dead(settings))

    assert verification_sweep() == SweepResult(cancelled=1)


# manage.py verification sweep --------------------------------------------------------


def sweep_command(*args, **options):
    out, err = StringIO(), StringIO()
    call_command("verification", "sweep", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_the_counts(client, emulator, clock, settings):
    start_login(client)
    clock.shift(code_dead(settings))

    out, _err = sweep_command()

    assert out == "Abandoned requests: 1 cancelled, 0 already over, 0 failed.\n"
    assert emulator.state_of(started_id()) == "CANCELLED"


def test_the_command_is_silent_for_cron_when_all_went_well(client, emulator, clock, settings):
    start_login(client)
    clock.shift(code_dead(settings))

    out, err = sweep_command(verbosity=0)

    assert (out, err) == ("", "")
    assert emulator.state_of(started_id()) == "CANCELLED"


def test_the_command_fails_when_the_provider_is_unavailable(client, emulator, clock, settings):
    start_login(client)
    clock.shift(code_dead(settings))
    emulator.fail(Fault.SERVER_ERROR, on="cancel")

    out = StringIO()
    with pytest.raises(CommandError, match=r"1 abandoned request not cancelled.*next run"):
        call_command("verification", "sweep", verbosity=0, stdout=out, stderr=StringIO())

    assert out.getvalue() == "Abandoned requests: 0 cancelled, 0 already over, 1 failed.\n"


def test_the_command_cancels_at_most_limit(emulator, clock, settings):
    for number in (NUMBER, OTHER_NUMBER):
        start_login(Client(), number)
    clock.shift(code_dead(settings))

    out, _err = sweep_command("--limit", "1")

    assert out.startswith("Abandoned requests: 1 cancelled,")
    assert len(cancels(emulator)) == 1


def test_the_cron_line_runs_quietly(tmp_path):
    env = embedded_default_env(tmp_path)
    assert manage(env, "migrate", "--noinput", "-v", "0").returncode == 0

    done = manage(env, "verification", "-v", "0", "sweep")

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
