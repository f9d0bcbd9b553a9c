"""The newcomer's first run: Django's usual `migrate`, then the site works.

Each test starts from a database nobody has touched, in a child process, as a
person following Django's tutorial would: no `make run`, no createcachetable.
"""

from __future__ import annotations

import json

from .conftest import NUMBER
from .embedded_default import embedded_default_env, manage, python

FIRST_LOGIN = """
import json
import django
django.setup()
from django.db import connection
from django.test import Client
import verification

client = Client()
start = client.post("/login/", {"number": "%s"})
code = verification.outbox[-1].code
finish = client.post("/verify/", {"code": code})
print(json.dumps({
    "tables": connection.introspection.table_names(),
    "start": [start.status_code, start["Location"]],
    "finish": finish.status_code,
    "account": client.get("/account/").status_code,
}))
"""


def test_migrate_alone_leaves_the_cache_table_and_the_first_login_works(tmp_path):
    env = embedded_default_env(tmp_path, VERIFY_BACKEND="locmem")

    migrated = manage(env, "migrate", "--noinput")

    assert migrated.returncode == 0, migrated.stderr
    done = python(env, FIRST_LOGIN % NUMBER)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert "django_cache" in outcome["tables"]
    assert outcome["start"] == [302, "/verify/"]
    assert outcome["finish"] == 302
    assert outcome["account"] == 200


def test_check_names_a_missing_cache_table_and_the_command_that_makes_it(tmp_path):
    env = embedded_default_env(tmp_path)
    # Before migrate there is nothing to report: migrate makes the table.
    fresh = manage(env, "check")
    assert fresh.returncode == 0, fresh.stderr
    assert manage(env, "migrate", "--noinput").returncode == 0
    # Then the cache is moved to a table that migrate did not make.
    env["CACHE_URL"] = "dbcache://site_cache"

    refused = manage(env, "check")

    assert refused.returncode == 1
    assert "flows.E011" in refused.stderr
    assert "The cache table 'site_cache' (CACHES['default'], a database cache) is missing" in (
        refused.stderr
    )
    assert "HINT: Create it: python manage.py createcachetable" in refused.stderr
    assert manage(env, "createcachetable").returncode == 0
    fixed = manage(env, "check")
    assert fixed.returncode == 0, fixed.stderr
    assert "System check identified no issues" in fixed.stdout
