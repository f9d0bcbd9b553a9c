from django.apps import AppConfig
from django.core import checks


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from .checks import check_cache_tables, check_verification_backend

        checks.register(check_verification_backend)
        checks.register(check_cache_tables, checks.Tags.caches, checks.Tags.database)
