from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin app, with the site's admin site as `admin.site`."""

    default_site = "passwordless.admin.AdminSite"


class PasswordlessConfig(AppConfig):
    """The site itself: what its session engines keep in the database (passwordless.sessions)."""

    name = "passwordless"
