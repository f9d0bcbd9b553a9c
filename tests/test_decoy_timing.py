"""With sign-up off, unknown numbers must not answer faster than registered ones.

A decoy makes no upstream call; it waits about as long as the provider lately
took, so that the response time does not tell registered numbers apart.
"""

import time

import pytest

from flows import process
from verification.backends.locmem import VerificationBackend as LocmemBackend

from .conftest import NUMBER
from .factories import UserFactory

pytestmark = pytest.mark.django_db

UPSTREAM_SECONDS = 0.08


class SlowBackend(LocmemBackend):
    """A provider that takes its time, as Vonage does over the network."""

    def start(self, number):
        time.sleep(UPSTREAM_SECONDS)
        return super().start(number)

    def check(self, request_id, code):
        time.sleep(UPSTREAM_SECONDS)
        return super().check(request_id, code)


@pytest.fixture
def slow_provider(settings, monkeypatch):
    settings.VERIFICATION_BACKEND = f"{__name__}.SlowBackend"
    settings.PASSWORDLESS_SIGNUP = False
    monkeypatch.setattr(process, "upstream_latency", process._UpstreamLatency())
    UserFactory(phone_number_for_2fa=NUMBER)


def timed_post(client, url, data):
    started = time.monotonic()
    response = client.post(url, data)
    return response, time.monotonic() - started


def test_a_decoy_start_takes_as_long_as_a_real_one(client, slow_provider, outbox):
    from django.test import Client

    _, real = timed_post(Client(), "/login/", {"number": NUMBER})
    response, decoy = timed_post(client, "/login/", {"number": "+14155550177"})
    assert response["Location"] == "/verify/"
    assert len(outbox) == 1  # the decoy sent nothing
    assert real >= UPSTREAM_SECONDS
    assert decoy >= UPSTREAM_SECONDS * 0.85


def test_a_decoy_check_takes_as_long_as_a_real_one(client, slow_provider, outbox):
    from django.test import Client

    registered = Client()
    registered.post("/login/", {"number": NUMBER})
    _, real = timed_post(registered, "/verify/", {"code": "000000"})
    client.post("/login/", {"number": "+14155550177"})
    response, decoy = timed_post(client, "/verify/", {"code": "000000"})
    assert response["Location"] == "/verify/"
    assert real >= UPSTREAM_SECONDS
    assert decoy >= UPSTREAM_SECONDS * 0.85
