"""Take over the VerificationLog model from the accounts app, table and rows as they are.

The table keeps its name (accounts_verificationlog, Meta.db_table) and its
indexes keep theirs, so the database is not touched: the model moves in the
migration state only. The content type row of the model moves with it, so
that the permissions on the log (view_verificationlog...), the groups that
hold them and the admin's history keep pointing at it. On a new database the
row does not exist yet (contenttypes creates it after `migrate`), and there is
nothing to move.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _content_type_move(apps, schema_editor, *, old: str, new: str) -> None:
    content_type_model = apps.get_model("contenttypes", "ContentType")
    content_types = content_type_model.objects.db_manager(schema_editor.connection.alias)
    if content_types.filter(app_label=new, model="verificationlog").exists():
        return
    content_types.filter(app_label=old, model="verificationlog").update(app_label=new)
    content_type_model.objects.clear_cache()


def content_type_forwards(apps, schema_editor):
    _content_type_move(apps, schema_editor, old="accounts", new="verificationlog")


def content_type_backwards(apps, schema_editor):
    _content_type_move(apps, schema_editor, old="verificationlog", new="accounts")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0004_verificationlog_moved"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="VerificationLog",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="when"
                            ),
                        ),
                        (
                            "purpose",
                            models.CharField(
                                choices=[
                                    ("login", "log in"),
                                    ("second_factor", "finish logging in"),
                                    ("new_phone", "confirm your new phone number"),
                                    ("step_up", "confirm it is you"),
                                    ("api", "API"),
                                    ("operator", "operator (manage.py)"),
                                ],
                                max_length=20,
                            ),
                        ),
                        (
                            "number",
                            models.CharField(
                                blank=True, max_length=32, verbose_name="phone number"
                            ),
                        ),
                        ("backend", models.CharField(blank=True, max_length=50)),
                        (
                            "request_id",
                            models.CharField(
                                blank=True, max_length=64, verbose_name="upstream request id"
                            ),
                        ),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("started", "started"),
                                    ("succeeded", "succeeded"),
                                    ("wrong_code", "wrong code"),
                                    ("expired", "expired"),
                                    ("too_many_attempts", "too many attempts"),
                                    ("cancelled", "cancelled"),
                                    ("rate_limited", "rate limited"),
                                    ("refused", "refused"),
                                    ("upstream_error", "upstream error"),
                                ],
                                max_length=20,
                            ),
                        ),
                        (
                            "ip",
                            models.GenericIPAddressField(
                                blank=True, null=True, verbose_name="client IP"
                            ),
                        ),
                        (
                            "price",
                            models.DecimalField(
                                blank=True, decimal_places=8, max_digits=14, null=True
                            ),
                        ),
                        ("currency", models.CharField(blank=True, max_length=3)),
                        ("detail", models.CharField(blank=True, max_length=100)),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="verification_logs",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "verification log entry",
                        "verbose_name_plural": "verification log",
                        "db_table": "accounts_verificationlog",
                        "ordering": ["-created_at"],
                        "indexes": [
                            models.Index(fields=["created_at"], name="verifylog_created_idx"),
                            models.Index(
                                fields=["outcome", "created_at"], name="verifylog_outcome_idx"
                            ),
                            models.Index(
                                fields=["number", "created_at"], name="verifylog_number_idx"
                            ),
                            models.Index(fields=["ip", "created_at"], name="verifylog_ip_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_forwards, content_type_backwards),
    ]
