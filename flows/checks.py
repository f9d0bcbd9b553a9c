"""System check: a database cache without its table stops `manage.py check`.

Registered in FlowsConfig.ready(); runs with `check`, `runserver` and `migrate`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.checks import CheckMessage, Error
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.db.migrations.recorder import MigrationRecorder
from django.utils.module_loading import import_string

# The migration that creates the database caches' tables (`migrate` runs it).
CACHE_TABLE_MIGRATION = ("accounts", "0003_cache_table")


def check_cache_tables(app_configs=None, databases=None, **kwargs) -> list[CheckMessage]:
    """Check that every database cache has its table once `migrate` has made it.

    Without it, the first login answers an HTTP 500 ("no such table"): the
    cache holds the rate-limit counters and the console backend's codes. This
    runs on a plain `check` and `runserver` too, which pass no `databases`:
    a database cache is only ever the development default (DEBUG off refuses
    it), on a local SQLite file. Before the migration has run there is
    nothing to say: `migrate` makes the table, and `runserver` already says
    that migrations are unapplied.
    """
    errors = []
    for alias, config in settings.CACHES.items():
        if not issubclass(import_string(config["BACKEND"]), BaseDatabaseCache):
            continue
        table = config["LOCATION"]
        model = BaseDatabaseCache(table, {}).cache_model_class
        aliases = databases if databases is not None else [router.db_for_write(model)]
        for database in aliases:
            if router.allow_migrate_model(database, model) and _missing_after_migrate(
                database, table
            ):
                command = "python manage.py createcachetable"
                if database != DEFAULT_DB_ALIAS:
                    command += f" --database {database}"
                errors.append(
                    Error(
                        f"The cache table {table!r} (CACHES[{alias!r}], a database cache) is "
                        f"missing from the database {database!r}: every login would fail with "
                        "an HTTP 500 (no such table).",
                        hint=f"Create it: {command}",
                        id="flows.E011",
                    )
                )
    return errors


def _missing_after_migrate(database: str, table: str) -> bool:
    connection = connections[database]
    try:
        if table in connection.introspection.table_names():
            return False
        return CACHE_TABLE_MIGRATION in MigrationRecorder(connection).applied_migrations()
    except DatabaseError:
        # A database that cannot be reached fails whatever needs it, with its
        # own message; this check is about one table.
        return False
