"""Pytest fixtures: the real Vonage SDK talking HTTPS to an in-process Vonage Verify emulator.

tests/conftest.py registers this module (`pytest_plugins`), so any test can ask
for these fixtures. Nothing is mocked: the backends build real SDK clients, the
SDK makes real HTTPS calls, and the emulator answers as Vonage's OpenAPI
specifications say (../shared/vonage-openapi/), with the service's rules.

Fixtures
--------
`vonage_emulator`
    The running emulator (one server per test session, state wiped before and
    after each test). It also points `REQUESTS_CA_BUNDLE` at its test CA (made
    with trustme) and puts 127.0.0.1 in `NO_PROXY`; both are restored after.
`vonage_backend_settings`
    Django settings for Verify v2 (VERIFY_BACKEND=vonage) against the emulator,
    with Basic auth: VONAGE_API_HOST=127.0.0.1:<port>, the emulator's key and
    secret, VONAGE_TIMEOUT=0.5, VERIFY_WORKFLOW=sms,voice. Returns pytest-django's
    `settings`, so a test can change any of them.
`vonage_jwt_backend_settings`
    The same, authenticating with VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY
    (the PEM text); the emulator checks the JWT's signature with its public key.
`vonage_legacy_backend_settings`
    Django settings for Verify v1 (VERIFY_BACKEND=vonage-legacy) against the
    emulator: key and secret, VERIFY_LEGACY_WORKFLOW_ID=1 (SMS, call, call).

Using the emulator
------------------
- `vonage_emulator.last_code("+14155550100")`: the code in the last message to
  that number, as the phone received it; `.last_message(number).channel` is
  "sms" or "voice"; `.messages` lists them all.
- `vonage_emulator.advance(seconds)`: move the service's clock (expiry, the
  30-second cancel rule, next events) without sleeping.
- `vonage_emulator.state_of(request_id)`: "IN PROGRESS", "SUCCESS", "FAILED",
  "EXPIRED" or "CANCELLED"; `.calls("start")` lists the calls received (never
  the credentials), with the start parameters in `.params`.
- `vonage_emulator.refuse_number(number, reason)`: starts to `number` fail as
  "invalid", "unroutable", "blocked" or "unsupported_network".
- `vonage_emulator.low_balance = True`: v2 answers 402, v1 status 9.
- `vonage_emulator.max_requests_per_second = 30`: Vonage's throttle (off by default).
- `vonage_emulator.fail(Fault.X, on="check", times=1)` (`from tests.emulator
  import Fault`): answer with a fault
  instead of the service, for one operation ("start", "check", "cancel",
  "next", "search") or all, for `times` calls or until `.heal()`:
  SERVER_ERROR (500), RATE_LIMITED (429), UNAUTHORIZED (401),
  PAYMENT_REQUIRED (402), FORBIDDEN (403), SERVICE_UNAVAILABLE (503),
  SLOW (no answer for `slow_seconds`, 2 s: past VONAGE_TIMEOUT), DROP (the
  connection closes without an answer), REFUSE (nothing listens: the port
  refuses connections), NOT_JSON (HTTP 200, an HTML body) and LEGACY_STATUS
  (v1 answers `status=` of your choice, e.g. "8"). A fault is not a processed
  call: the request it replaced did not happen.

Example::

    def test_login(client, vonage_backend_settings, vonage_emulator):
        client.post("/login/", {"number": "+14155550100"})
        code = vonage_emulator.last_code("+14155550100")
        response = client.post("/verify/", {"code": code})
"""

from __future__ import annotations

import pytest

from .server import VonageEmulator


@pytest.fixture(scope="session")
def _vonage_emulator_server(tmp_path_factory):
    emulator = VonageEmulator(ca_bundle=tmp_path_factory.mktemp("vonage") / "ca.pem")
    yield emulator
    emulator.close()


@pytest.fixture
def vonage_emulator(_vonage_emulator_server, monkeypatch):
    """Return the emulator, fresh, with the SDK trusting its certificate."""
    emulator = _vonage_emulator_server
    emulator.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_bundle))
    # A proxy from the environment must not carry calls meant for 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield emulator
    emulator.reset()


def _point_at(settings, emulator: VonageEmulator, alias: str, path: str):
    settings.VERIFY_BACKEND = alias
    settings.VERIFICATION_BACKEND = path
    settings.VONAGE_API_HOST = emulator.host
    settings.VONAGE_API_KEY = emulator.api_key
    settings.VONAGE_API_SECRET = emulator.api_secret
    settings.VONAGE_APPLICATION_ID = ""
    settings.VONAGE_PRIVATE_KEY = ""
    # Short, so the SLOW fault is over quickly; the emulator answers in milliseconds.
    settings.VONAGE_TIMEOUT = 0.5
    settings.VERIFY_LOCALE = ""
    return settings


@pytest.fixture
def vonage_backend_settings(settings, vonage_emulator):
    """Configure Verify v2 (Basic auth) against the emulator; return `settings`."""
    _point_at(
        settings,
        vonage_emulator,
        "vonage",
        "verification.backends.vonage.VerificationBackend",
    )
    settings.VERIFY_WORKFLOW = ["sms", "voice"]
    return settings


@pytest.fixture
def vonage_jwt_backend_settings(vonage_backend_settings, vonage_emulator):
    """Configure Verify v2 with JWT auth (application id and private key) against the emulator."""
    vonage_backend_settings.VONAGE_APPLICATION_ID = vonage_emulator.application_id
    vonage_backend_settings.VONAGE_PRIVATE_KEY = vonage_emulator.private_key_pem
    return vonage_backend_settings


@pytest.fixture
def vonage_legacy_backend_settings(settings, vonage_emulator):
    """Configure Verify v1 (legacy) against the emulator; return `settings`."""
    _point_at(
        settings,
        vonage_emulator,
        "vonage-legacy",
        "verification.backends.vonage_legacy.VerificationBackend",
    )
    settings.VERIFY_LEGACY_WORKFLOW_ID = 1
    return settings
