"""manage.py purgeverificationlog: keep the verification log to its retention period."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from verificationlog.models import VerificationLog


class Command(BaseCommand):
    help = (
        "Delete verification log rows older than VERIFY_LOG_RETENTION_DAYS days "
        "(or --days). Run it daily, e.g. from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days instead of VERIFY_LOG_RETENTION_DAYS (at least 1).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the rows that would be deleted, delete nothing.",
        )

    def handle(self, *args, **options):
        """Delete (or count) the rows older than the retention period."""
        days = options["days"]
        if days is None:
            days = settings.VERIFY_LOG_RETENTION_DAYS
        if days < 1:
            raise CommandError("--days must be 1 or more.")
        cutoff = timezone.now() - datetime.timedelta(days=days)
        older = VerificationLog.objects.filter(created_at__lt=cutoff)
        when = (
            f"older than {days} day{'s' if days != 1 else ''} (before {cutoff:%Y-%m-%d %H:%M} UTC)"
        )
        if options["dry_run"]:
            count = older.count()
            self.stdout.write(f"Would delete {count} verification log rows {when}.")
            return
        # No signal or foreign key points at the log, so this is one DELETE.
        count, _ = older.delete()
        self.stdout.write(self.style.SUCCESS(f"Deleted {count} verification log rows {when}."))
