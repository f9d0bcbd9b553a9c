"""A handful of people logging in at the same moment on the embedded default.

The embedded default keeps the database, the rate-limit counters and the codes
in one SQLite file (Django's database cache). Two requests that write at the
same moment must wait for each other, not fail: a counter that cannot be
written fails closed ("wait 1 minute"), and a code that cannot be stored is
never accepted. These tests run real threads on a SQLite file opened with the
site's own database settings, as `make run` opens db.sqlite3.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.db import connections
from django.test import Client

from .conftest import last_code
from .security.conftest import numbers_in_distinct_ranges

PEOPLE = 5
ROUNDS = 4


@pytest.fixture
def site_database(transactional_db, tmp_path):
    """Point every thread's "default" connection at a SQLite file with the site's settings.

    The test run's own SQLite database lives in memory, shared between
    threads, where a write meeting another connection's lock fails at once;
    db.sqlite3 is a file, and its connections have the options of
    passwordless/settings.py. On PostgreSQL the real database serves.
    """
    if connections["default"].vendor != "sqlite":
        yield
        return
    original_settings = connections.settings["default"]
    original_connection = connections["default"]
    connections.settings["default"] = {
        **original_settings,
        "NAME": str(tmp_path / "db.sqlite3"),
    }
    connections["default"] = connections.create_connection("default")
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = original_settings
        connections["default"] = original_connection


def _log_in_together(numbers: list[str], outbox) -> list[tuple[str, object, object]]:
    """Have one person per number ask for a code and type it, all at the same moments."""
    barrier = threading.Barrier(len(numbers))
    results = []

    def person(index: int, number: str):
        browser = Client(REMOTE_ADDR=f"192.0.2.{index + 10}")
        try:
            barrier.wait(timeout=30)
            asked = browser.post("/login/", {"number": number})
            barrier.wait(timeout=30)
            if asked.status_code != 302 or asked["Location"] != "/verify/":
                results.append((number, asked.status_code, None))
                return
            typed = browser.post("/verify/", {"code": last_code(outbox, number)})
            logged_in = SESSION_KEY in browser.session
            results.append(
                (number, typed.status_code, typed.get("Location") if logged_in else None)
            )
        except Exception as exc:  # collected: a crash is a finding, reported below
            results.append((number, repr(exc), None))
            barrier.abort()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=person, args=(index, number))
        for index, number in enumerate(numbers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.django_db(transaction=True)
def test_five_people_logging_in_at_once_all_get_in(site_database, outbox):
    """Five people at once, four times over: every one logs in, nobody is told to wait."""
    # Numbers of different ranges, as strangers' are: the range limit is not the point.
    everyone = numbers_in_distinct_ranges(PEOPLE * ROUNDS)
    for round_number in range(ROUNDS):
        numbers = everyone[round_number * PEOPLE : (round_number + 1) * PEOPLE]

        results = _log_in_together(numbers, outbox)

        assert sorted(results) == [(number, 302, "/") for number in numbers]
