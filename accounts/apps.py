from django.apps import AppConfig
from django.core import checks


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .checks import check_cache_tables, check_verification_backend
        from .services import user_last_login_update

        checks.register(check_verification_backend)
        checks.register(check_cache_tables, checks.Tags.caches, checks.Tags.database)
        # The same last_login, written by one UPDATE instead of save().
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(user_last_login_update, dispatch_uid="update_last_login")
