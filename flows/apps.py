from django.apps import AppConfig
from django.core import checks


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Login flows"

    def ready(self):
        from .checks import check_cache_tables

        checks.register(check_cache_tables, checks.Tags.caches, checks.Tags.database)
