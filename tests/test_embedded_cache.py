"""The embedded default's database cache keeps what the site puts in it."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command

from .conftest import start_login
from .security.conftest import settings_values

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded_default_cache(settings):
    """Run this test on the cache the embedded default configures (whatever CACHE_URL says)."""
    embedded = settings_values({"CACHE_URL": None, "DATABASE_URL": None}, ["CACHES"])["CACHES"]
    assert embedded["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    settings.CACHES = embedded
    settings.RATELIMIT_USE_CACHE = "default"
    # The suite's own database has the table only when it runs on this cache.
    call_command("createcachetable", verbosity=0)
    cache.clear()


def test_a_busy_development_cache_keeps_its_counters(
    embedded_default_cache, client, outbox, settings
):
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
