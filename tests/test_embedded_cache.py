"""The embedded default's database cache keeps what the site puts in it."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from .conftest import start_login

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(
    django_settings.CACHES["default"]["BACKEND"] != "django.core.cache.backends.db.DatabaseCache",
    reason="the embedded default's cache only: Redis keeps every key by itself",
)
def test_a_busy_development_cache_keeps_its_counters(client, outbox, settings):
    """Past Django's default of 300 entries, the database cache would cull a third of
    them, the limits' counters included: the fourth start would get through."""
    settings.VERIFY_RATE_START_PER_IP = "3/h"
    cache.set_many({f"zz-other-{index}": index for index in range(400)}, 3600)
    for number in ("+14155550101", "+14155550102", "+14155550103"):
        assert start_login(client, number)["Location"] == "/verify/"
        cache.set_many({f"zz-more-{number}-{index}": index for index in range(150)}, 3600)

    response = start_login(client, "+14155550104")

    assert response.status_code == 429
    assert len(outbox) == 3
