"""The floor app (bench/floor) on the project's settings and middleware."""

from bench.instrument import SITE_APPS, with_bench_middleware
from passwordless.settings import *  # noqa: F403
from passwordless.settings import MIDDLEWARE, TEMPLATES

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bench.floor",
]
AUTH_USER_MODEL = "auth.User"
# Django's own: the project's backend (accounts) is one of its features.
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
ROOT_URLCONF = "bench.floor.urls"
# Django's own cached_db: the project's engines (passwordless/sessions) are
# one of its features.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
TEMPLATES[0]["DIRS"] = []
# The project's own middleware, if it has any, belongs to its features.
MIDDLEWARE = with_bench_middleware([m for m in MIDDLEWARE if not m.startswith(SITE_APPS)])
