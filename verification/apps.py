from django.apps import AppConfig
from django.core import checks


class VerificationConfig(AppConfig):
    name = "verification"
    verbose_name = "Verification"

    def ready(self):
        from .checks import check_verification_backend

        checks.register(check_verification_backend)
