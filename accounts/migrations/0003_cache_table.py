"""Create the table of every database cache, so that `migrate` alone gives a working site.

The embedded default keeps the cache (rate-limit counters, the console
backend's codes) in the database (CACHE_URL=dbcache://django_cache). Without
its table, the first login answers an HTTP 500 ("no such table"). Django makes
that table with `createcachetable`, a step a newcomer following Django's usual
`migrate` then `runserver` does not know about: this migration runs it.

Nothing happens when no cache is a database cache (Redis, Memcached), and a
table that exists is left alone. A cache table switched on after this
migration ran is named by `manage.py check` (accounts.checks).
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_verificationlog"),
    ]

    operations = [
        # Reversed, the table stays: it holds only what a cache may lose, and
        # Django's own commands never drop it either.
        migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True),
    ]
