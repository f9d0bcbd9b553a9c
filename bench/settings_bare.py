"""The floor app (bench/floor) on bare Django: `startproject`'s settings and middleware.

The other floor (settings_floor) keeps the project's middleware and settings,
so what they cost is not in the project's ratio to it; this one keeps nothing
of the project's but what the four apps of the bench must share to be compared:
the deployment (DEBUG off, the secret key and hosts from the environment, the
proxy's HTTPS header, without which Django's CSRF check refuses the browser's
https:// Origin) and the storage (the same PostgreSQL and Redis, read from
DATABASE_URL and CACHE_URL as the project reads them, CONN_MAX_AGE=60, and
sessions the way the project stores them with that cache: Django's cached_db). Every
other setting is `startproject`'s or Django's default.
"""

from bench.instrument import with_bench_middleware
from passwordless.settings import (  # noqa: F401 (settings)
    ALLOWED_HOSTS,
    CACHES,
    DATABASES,
    DEBUG,
    SECRET_KEY,
    STATIC_ROOT,
)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Django's own cached_db: the project's engines (passwordless/sessions) are its own.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# What `django-admin startproject` writes (Django 5.2), the floor's app added.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bench.floor",
]
MIDDLEWARE = with_bench_middleware(
    [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
)
ROOT_URLCONF = "bench.floor.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
