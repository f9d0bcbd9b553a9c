from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Purpose(models.TextChoices):
    """What a verification is for: what a correct code completes."""

    LOGIN = "login", "log in"
    SECOND_FACTOR = "second_factor", "finish logging in"
    NEW_PHONE = "new_phone", "confirm your new phone number"
    STEP_UP = "step_up", "confirm it is you"
    API = "api", "API"
    # Verifications started by an operator with `manage.py verification`, so
    # that test codes can be told apart from the site's traffic.
    OPERATOR = "operator", "operator (manage.py)"


class Outcome(models.TextChoices):
    """What happened at one step of a verification (a VerificationLog row)."""

    STARTED = "started", "started"
    SUCCEEDED = "succeeded", "succeeded"
    WRONG_CODE = "wrong_code", "wrong code"
    EXPIRED = "expired", "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts", "too many attempts"
    CANCELLED = "cancelled", "cancelled"
    RATE_LIMITED = "rate_limited", "rate limited"
    REFUSED = "refused", "refused"
    UPSTREAM_ERROR = "upstream_error", "upstream error"


# The detail of a "started" row for a number that cannot log in: nothing was
# sent, so it counts neither as a code sent nor in the conversion rate.
DECOY_DETAIL = "decoy"


class VerificationLog(models.Model):
    """One event of a verification, for operators: what, when, to which number, at what cost.

    Written by `verificationlog.events.verification_event` only; read-only in the
    admin. Rows older than VERIFY_LOG_RETENTION_DAYS are removed by
    `manage.py purgeverificationlog`.
    """

    created_at = models.DateTimeField("when", default=timezone.now)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    # E.164, as the flow knew it. Shown masked everywhere in the admin.
    number = models.CharField("phone number", max_length=32, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="verification_logs",
    )
    backend = models.CharField(max_length=50, blank=True)
    request_id = models.CharField("upstream request id", max_length=64, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    # What the provider charged, when it says (Vonage Verify v1 reports it on a
    # successful check): up to 8 decimal places, like its API.
    price = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    detail = models.CharField(max_length=100, blank=True)

    class Meta:
        # The table the model had in the accounts app, kept with its rows.
        db_table = "accounts_verificationlog"
        verbose_name = "verification log entry"
        verbose_name_plural = "verification log"
        ordering = ["-created_at"]
        # One index per question operators ask: what happened lately, how
        # often each outcome, what happened to this number, from this client.
        indexes = [
            models.Index(fields=["created_at"], name="verifylog_created_idx"),
            models.Index(fields=["outcome", "created_at"], name="verifylog_outcome_idx"),
            models.Index(fields=["number", "created_at"], name="verifylog_number_idx"),
            models.Index(fields=["ip", "created_at"], name="verifylog_ip_idx"),
        ]

    def __str__(self):
        return f"{self.get_outcome_display()} ({self.get_purpose_display()})"
