"""The VerificationLog model moves to the verificationlog app (issue 16).

State only: the table accounts_verificationlog stays, with its rows, and
verificationlog's first migration takes the model over (db_table keeps the
name).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_cache_table"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="VerificationLog")],
            database_operations=[],
        ),
    ]
