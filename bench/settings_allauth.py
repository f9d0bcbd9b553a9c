"""django-allauth's phone login by code (bench/allauth_app) on the project's settings."""

from bench.instrument import SITE_APPS, with_bench_middleware
from passwordless.settings import *  # noqa: F403
from passwordless.settings import MIDDLEWARE, TEMPLATES

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "bench.allauth_app",
]
AUTH_USER_MODEL = "auth.User"
ROOT_URLCONF = "bench.allauth_app.urls"
# Django's own cached_db: the project's engines (passwordless/sessions) are
# one of its features.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
TEMPLATES[0]["DIRS"] = []
MIDDLEWARE = with_bench_middleware(
    [m for m in MIDDLEWARE if not m.startswith(SITE_APPS)]
    + ["allauth.account.middleware.AccountMiddleware"]
)
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

ACCOUNT_ADAPTER = "bench.allauth_app.adapter.PhoneAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"phone"}
ACCOUNT_SIGNUP_FIELDS = ["phone*"]
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_EMAIL_VERIFICATION = "none"
# Counted as always, never reached by the bench (like the project's limits).
ACCOUNT_RATE_LIMITS = {
    "login": "10000000/m/ip",
    "request_login_code": "10000000/m/ip,10000000/m/key",
    "login_failed": "10000000/m/ip,10000000/m/key",
}
