from django.apps import AppConfig


class VerificationLogConfig(AppConfig):
    name = "verificationlog"
    verbose_name = "Verification log"
