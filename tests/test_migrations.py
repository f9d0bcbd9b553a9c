"""The verification log moved from the accounts app to its own: an existing install keeps it.

An install from before the split has the log's rows in accounts_verificationlog
and staff who may read it through the permission accounts.view_verificationlog.
After `migrate`, the same table holds the same rows, and the same permission,
now verificationlog.view_verificationlog, still lets them read it.
"""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from verificationlog.models import VerificationLog

from .factories import UserFactory

BEFORE_THE_SPLIT = [("accounts", "0003_cache_table")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    return executor


@pytest.fixture
def before_the_split(transactional_db):
    """Migrate back to before the split for the test, and forward again whatever happens."""
    executor = migrate(BEFORE_THE_SPLIT)
    try:
        yield executor.loader.project_state(BEFORE_THE_SPLIT).apps
    finally:
        migrate(None)


def test_an_existing_install_keeps_its_log_rows_and_who_may_read_them(before_the_split):
    old_apps = before_the_split
    old_log = old_apps.get_model("accounts", "VerificationLog")
    old_content_type = ContentType.objects.get(app_label="accounts", model="verificationlog")
    reader = UserFactory(is_staff=True, phone_number_for_2fa=None)
    reader.user_permissions.add(
        Permission.objects.get(content_type=old_content_type, codename="view_verificationlog")
    )
    old_log.objects.create(purpose="login", number="+14155550100", outcome="started")
    old_log.objects.create(purpose="login", number="+14155550100", outcome="succeeded")

    migrate(None)

    assert list(VerificationLog.objects.order_by("pk").values_list("number", "outcome")) == [
        ("+14155550100", "started"),
        ("+14155550100", "succeeded"),
    ]
    content_type = ContentType.objects.get_for_model(VerificationLog)
    assert content_type.pk == old_content_type.pk
    assert not ContentType.objects.filter(app_label="accounts", model="verificationlog").exists()
    reader = type(reader).objects.get(pk=reader.pk)
    assert reader.has_perm("verificationlog.view_verificationlog")


def test_a_new_install_has_nothing_to_move(transactional_db):
    # contenttypes makes the row after `migrate`: the migration found none to move.
    assert ContentType.objects.get_for_model(VerificationLog).app_label == "verificationlog"
    assert not ContentType.objects.filter(app_label="accounts", model="verificationlog").exists()
    assert Permission.objects.filter(
        content_type__app_label="verificationlog", codename="view_verificationlog"
    ).exists()


@pytest.mark.parametrize("app_label, name", [("accounts", "0004"), ("verificationlog", "0001")])
def test_the_move_writes_no_sql(transactional_db, app_label, name):
    out = StringIO()
    call_command("sqlmigrate", app_label, name, stdout=out)
    statements = [
        line
        for line in out.getvalue().splitlines()
        if line.strip() and not line.startswith("--") and line not in {"BEGIN;", "COMMIT;"}
    ]
    assert statements == []
