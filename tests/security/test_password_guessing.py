"""Password guessing in parallel: the limits hold when guesses arrive together.

An attempt is counted before its password is checked, atomically in the shared
cache (Redis's INCR), so a burst of simultaneous guesses cannot all pass a
counter that is still at zero. Runs in the PostgreSQL + Redis run: the
development database cache increments with a read and a write, which
django-ratelimit itself calls not atomic.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import forms
from django.db import connections
from django.test import Client

from ..factories import UserFactory

pytestmark = pytest.mark.services

PARALLEL = 12
LIMIT = 3


def test_parallel_wrong_passwords_stop_at_the_limit(concurrent_database, settings, monkeypatch):
    settings.LOGIN_RATE_PASSWORD_PER_USERNAME = f"{LIMIT}/15m"
    settings.LOGIN_RATE_PASSWORD_PER_IP = "100/15m"
    UserFactory(username="target")
    checked = []
    original = forms.authenticate

    def counting_authenticate(*args, **kwargs):
        checked.append(kwargs.get("username"))
        return original(*args, **kwargs)

    monkeypatch.setattr(forms, "authenticate", counting_authenticate)
    barrier = threading.Barrier(PARALLEL)
    statuses, errors = [], []

    def guess(index):
        browser = Client(REMOTE_ADDR=f"203.0.113.{index + 1}")
        try:
            barrier.wait(timeout=30)
            response = browser.post(
                "/login/password/", {"username": "target", "password": f"guess {index}"}
            )
            statuses.append(response.status_code)
        except Exception as exc:  # collected: a crash is a finding
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(index,)) for index in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(statuses) == PARALLEL
    # At most LIMIT passwords were ever checked; every other guess got 429.
    assert len(checked) <= LIMIT
    assert statuses.count(429) >= PARALLEL - LIMIT
