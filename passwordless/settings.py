"""Settings for passwordless, read from the environment (and a `.env` file).

Every variable is documented in `.env.example`. With nothing set, the site runs
on SQLite with the console verification backend, for development.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from flows.counters import parse_rate
from passwordless.logging import FORMATTERS as LOG_FORMATTERS

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` file beside manage.py is read when present; real environment
# variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Development is the embedded default: `make run` must work with no
# configuration. Production sets DEBUG=false, and then the secrets below have
# no default, so a missing one stops the start with a message naming it.
DEBUG = env.bool("DEBUG", default=True)

DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

if DEBUG:
    SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]", "testserver"]
else:
    # Django's own bar (check --deploy's security.W009), refused rather than
    # warned about: a weak key lets anyone forge sessions and signed tokens.
    if (
        SECRET_KEY == DEVELOPMENT_SECRET_KEY
        or len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
        or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY is missing or too weak: with DEBUG off, set SECRET_KEY to a random "
            f"value of at least {SECRET_KEY_MIN_LENGTH} characters, not starting with "
            f"{SECRET_KEY_INSECURE_PREFIX!r} "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is missing: with DEBUG off, set ALLOWED_HOSTS to the site's "
            "host names, comma separated (e.g. ALLOWED_HOSTS=login.example.com)."
        )

INSTALLED_APPS = [
    # Django's admin, logged into through the site's own login (passwordless/admin.py).
    "passwordless.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "phonenumber_field",
    "accounts",
    "verification",
    "verificationlog",
    "flows",
    # The session engines' cache generation (passwordless.sessions).
    "passwordless.apps.PasswordlessConfig",
]

MIDDLEWARE = [
    # GET /healthz for load balancers, answered before the SSL redirect, the
    # host check and sessions (passwordless/health.py).
    "passwordless.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the app server, before sessions and the rest
    # (WhiteNoise's documented place: right after SecurityMiddleware).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "passwordless.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Answers to a logged-in person: Cache-Control no-store.
    "passwordless.middleware.NeverCacheForUsersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "passwordless.urls"
WSGI_APPLICATION = "passwordless.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# DATABASE_URL=postgres://… goes through psycopg 3. Django opens a connection
# per request by default (CONN_MAX_AGE=0); CONN_MAX_AGE=60 keeps one per worker
# thread for a minute, and the health check pings it before reuse so a restarted
# database costs a ping, not a failed request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A transaction takes SQLite's write lock when it begins, so requests that
    # write together wait their turn (the 5 s busy timeout) instead of failing
    # with "database is locked": Django's database cache reads, then writes,
    # and lost its writes (rate-limit counters, codes) when two collided.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches hold the rate-limit counters and the console backend's pending codes,
# so every process of the site must see the same cache. The embedded default is
# Django's database cache in the SQLite file: shared by every process on this
# machine, no server needed. `migrate` creates its table (the migration
# accounts/0003_cache_table), and `manage.py check` names it when it is missing.
DEFAULT_CACHE_URL = "dbcache://django_cache"
CACHES = {"default": env.cache("CACHE_URL", default=DEFAULT_CACHE_URL)}
# CACHE_URL=redis://… must reach django-redis, whose client runs the rate
# limits' counting script (flows.counters). django-environ picks it only
# when it can import it and silently falls back to Django's own Redis backend
# otherwise: name it here, so a missing package fails at the start instead.
if CACHES["default"]["BACKEND"] in {
    "django.core.cache.backends.redis.RedisCache",
    "django_redis.cache.RedisCache",
}:
    CACHES["default"]["BACKEND"] = "django_redis.cache.RedisCache"
    # A Redis that stops answering fails a request after a few seconds
    # instead of holding a worker thread forever.
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("SOCKET_CONNECT_TIMEOUT", 5)
    CACHES["default"]["OPTIONS"].setdefault("SOCKET_TIMEOUT", 5)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    # Django culls a database cache past 300 entries, a third at a time, the
    # rate-limit counters and pending codes among them: a development site
    # in use would forget its limits and its codes mid-login. Entries leave
    # when they expire instead.
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("MAX_ENTRIES", 1_000_000)

# Backends that are shared by every process and increment atomically, which
# the rate-limit counters need to be exact under concurrency. Redis alone:
# Memcached would need a client the site does not install, and its failures
# are not among the outages it answers with the 503 page (passwordless.outages).
ATOMIC_SHARED_CACHE_BACKENDS = {"django_redis.cache.RedisCache"}
SILENCED_SYSTEM_CHECKS = []
# The database cache's increment is a read then a write, not atomic: the
# counters count there one request at a time, in a transaction
# (flows.counters). For development on one machine that is an acceptable
# trade for needing no cache server, not for production.
if CACHES["default"]["BACKEND"] not in ATOMIC_SHARED_CACHE_BACKENDS and not DEBUG:
    raise ImproperlyConfigured(
        "CACHE_URL must point at Redis when DEBUG is off: rate limits "
        f"need a shared cache that increments atomically, and {CACHES['default']['BACKEND']} "
        "is not one (e.g. CACHE_URL=redis://127.0.0.1:6379/0)."
    )

AUTH_USER_MODEL = "accounts.User"
# Django's ModelBackend under the path the site's sessions store
# (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ModelBackend"]
LOGIN_URL = "flows:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Server-side sessions: logout kills a session for good, and the pending
# verification never leaves the server. In the database by default; with a
# shared Redis (CACHE_URL), SESSION_ENGINE=cached_db reads them
# from the cache and writes both, and SESSION_ENGINE=cache keeps them in the
# cache only (fastest; a cache flush or eviction logs people out). Cookie-based
# sessions are refused: they cannot be killed server-side.
# The db and cached_db engines are Django's, made safe through an outage of
# the database or the cache (passwordless/sessions).
SESSION_ENGINES = {
    "db": "passwordless.sessions.db",
    "cached_db": "passwordless.sessions.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
}
# With a shared cache, sessions are read from it and written to both: one
# query less per request, and logout still deletes the row.
_session_engine = env.str(
    "SESSION_ENGINE",
    default="cached_db" if CACHES["default"]["BACKEND"] in ATOMIC_SHARED_CACHE_BACKENDS else "db",
)
if _session_engine not in SESSION_ENGINES:
    raise ImproperlyConfigured(
        f"SESSION_ENGINE must be one of {', '.join(SESSION_ENGINES)}, not {_session_engine!r}."
    )
if _session_engine != "db" and CACHES["default"]["BACKEND"] not in ATOMIC_SHARED_CACHE_BACKENDS:
    raise ImproperlyConfigured(
        f"SESSION_ENGINE={_session_engine} needs CACHE_URL to point at Redis: "
        "sessions must be seen by every process of the site."
    )
if _session_engine == "cached_db" and str(
    CACHES["default"].get("OPTIONS", {}).get("IGNORE_EXCEPTIONS", "")
).lower() in {"1", "true", "yes", "on"}:
    raise ImproperlyConfigured(
        "SESSION_ENGINE=cached_db cannot run with the cache's IGNORE_EXCEPTIONS: a session "
        "copy Redis failed to write or delete would go unnoticed, and a logout could be "
        "undone when Redis comes back. Remove it from CACHE_URL, or use SESSION_ENGINE=db."
    )
SESSION_ENGINE = SESSION_ENGINES[_session_engine]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page links its stylesheet and scripts from /static/: no inline style or
# script, no other origin, no frames (passwordless/middleware.py sends it).
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
)

# HTTPS. With DEBUG off these defaults make `manage.py check --deploy` clean:
# plain HTTP is redirected, cookies travel over HTTPS only, and browsers are
# told (HSTS) to use HTTPS on this host for an hour; raise SECURE_HSTS_SECONDS
# to 31536000 once the whole domain is known to work over HTTPS.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
# Off unless chosen: includeSubDomains binds every subdomain of the site's
# domain to HTTPS too, and a preload entry ships inside browsers for months;
# neither can be taken back quickly, so neither follows from a default.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# check --deploy warns when either is off (security.W005, W021). Off is this
# site's deliberate default, so those two warnings, and only while their
# option is off, are silenced: the check stays clean and keeps every other
# warning.
if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
    SILENCED_SYSTEM_CHECKS += ["security.W005"]
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS += ["security.W021"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Origins (scheme and host) allowed to POST forms besides the site's own host,
# e.g. https://login.example.com when a proxy rewrites the Host header.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind a proxy (nginx, a load balancer) --------------------------------------

# The header the proxy sets to say the browser used HTTPS, and its value, e.g.
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https. Set it only behind a
# proxy that always sets or strips that header, or a client can claim HTTPS.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a META name and a value, comma separated, "
            "e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
# How many proxies of yours stand in front of the app, each appending to
# X-Forwarded-For. 0 (the default): the client is REMOTE_ADDR and the header is
# ignored, so nobody can pick the address rate limits count against. 1: one
# proxy (nginx); the client is the last X-Forwarded-For entry. N: the Nth from
# the right (passwordless.clients.client_ip).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
# Per-client limits count an IPv6 client by its network of this many bits
# (the name and default django-ratelimit gave it): one subscriber usually
# holds a whole /64 and could take a fresh address for every request.
RATELIMIT_IPV6_MASK = env.int("RATELIMIT_IPV6_MASK", default=64)
if not 32 <= RATELIMIT_IPV6_MASK <= 128:
    raise ImproperlyConfigured("RATELIMIT_IPV6_MASK must be between 32 and 128.")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` copies every static file here; WhiteNoise serves it.
STATIC_ROOT = BASE_DIR / env.str("STATIC_ROOT", default="staticfiles")
# Production (DEBUG off) serves the collected files under hashed, compressed
# names, cached by browsers for ever; collectstatic must have run, or pages
# fail naming the missing file. Development and the test runner (whose DEBUG
# is off, but which collects nothing) serve the files from static/ as they are.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # WhiteNoise's hashed, compressed files, each URL worked out once
        # (passwordless/staticfiles.py).
        "BACKEND": "passwordless.staticfiles.ManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Without the manifest, WhiteNoise looks files up in static/ on each request
# rather than reading a STATIC_ROOT that was never collected.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = not STATIC_MANIFEST

# Phone numbers ------------------------------------------------------------

# Optional ISO 3166 country (e.g. "GB"): lets people type national numbers.
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="").upper() or None
PHONENUMBER_DEFAULT_REGION = DEFAULT_PHONE_REGION
PHONENUMBER_DB_FORMAT = "E164"
PHONENUMBER_DEFAULT_FORMAT = "E164"

# Verification ---------------------------------------------------------------

VERIFICATION_BACKENDS = {
    "console": "verification.backends.console.VerificationBackend",
    "locmem": "verification.backends.locmem.VerificationBackend",
    "vonage": "verification.backends.vonage.VerificationBackend",
    "vonage-legacy": "verification.backends.vonage_legacy.VerificationBackend",
}
VERIFY_BACKEND = env.str("VERIFY_BACKEND", default="console")
# An alias from the table above, or the dotted path of any backend class.
VERIFICATION_BACKEND = VERIFICATION_BACKENDS.get(VERIFY_BACKEND, VERIFY_BACKEND)
# The console backend prints every code where the logs go, and locmem keeps
# them in memory for tests: with DEBUG off either would let whoever reads the
# logs log in as anyone. Refused unless explicitly allowed (a staging site
# with no SMS, for instance).
DEVELOPMENT_VERIFICATION_BACKENDS = {
    VERIFICATION_BACKENDS["console"],
    VERIFICATION_BACKENDS["locmem"],
}
VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION = env.bool(
    "VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION", default=False
)
if (
    VERIFICATION_BACKEND in DEVELOPMENT_VERIFICATION_BACKENDS
    and not DEBUG
    and not VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION
):
    raise ImproperlyConfigured(
        f"VERIFY_BACKEND={VERIFY_BACKEND} with DEBUG off: this development backend sends no "
        "SMS and puts every code where the logs go, so whoever reads them logs in as anyone. "
        "Set VERIFY_BACKEND=vonage (or vonage-legacy), or set "
        "VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION=true to allow it."
    )

VONAGE_BRAND_NAME = env.str("VONAGE_BRAND_NAME", default="")
VERIFY_BRAND = env.str("VERIFY_BRAND", default="") or VONAGE_BRAND_NAME or "Passwordless"
VERIFY_CODE_LENGTH = env.int("VERIFY_CODE_LENGTH", default=6)
VERIFY_CODE_TTL = env.int("VERIFY_CODE_TTL", default=300)
if not 4 <= VERIFY_CODE_LENGTH <= 10:
    raise ImproperlyConfigured("VERIFY_CODE_LENGTH must be between 4 and 10.")
if not 60 <= VERIFY_CODE_TTL <= 600:
    raise ImproperlyConfigured(
        "VERIFY_CODE_TTL must be between 60 and 600 seconds: a code lives 10 minutes at most."
    )
# Wrong codes that kill a verification request (Vonage's own rule is 3).
VERIFY_MAX_WRONG_CODES = 3

# Anyone with a phone can sign up by logging in. Off: only numbers that belong
# to an active user can log in, and unknown numbers get the same answer.
PASSWORDLESS_SIGNUP = env.bool("PASSWORDLESS_SIGNUP", default=True)
# Users who chose password + code log in with both. True lets them log in with
# the phone alone too, for sites that see the phone as enough.
PHONE_LOGIN_FOR_2FA_USERS = env.bool("PHONE_LOGIN_FOR_2FA_USERS", default=False)

# Rate limits: "count/period", the period in s, m, h or d with an optional
# multiplier (5/15m, 10/h, 3/d). A rate written otherwise stops the start.
VERIFY_RATE_START_PER_IP = env.str("VERIFY_RATE_START_PER_IP", default="5/15m")
VERIFY_RATE_START_PER_NUMBER = env.str("VERIFY_RATE_START_PER_NUMBER", default="3/15m")
VERIFY_RATE_CHECK_PER_SESSION = env.str("VERIFY_RATE_CHECK_PER_SESSION", default="5/5m")
VERIFY_RATE_CHECK_PER_IP = env.str("VERIFY_RATE_CHECK_PER_IP", default="10/5m")
VERIFY_RATE_WRONG_CODES_PER_NUMBER = env.str("VERIFY_RATE_WRONG_CODES_PER_NUMBER", default="10/h")
# Wrong passwords on /login/password/.
LOGIN_RATE_PASSWORD_PER_IP = env.str("LOGIN_RATE_PASSWORD_PER_IP", default="10/15m")
LOGIN_RATE_PASSWORD_PER_USERNAME = env.str("LOGIN_RATE_PASSWORD_PER_USERNAME", default="5/15m")
# New phone numbers tried on /account/phone/ (each answer may say a number is taken).
ACCOUNT_RATE_PHONE_CHANGE_PER_USER = env.str("ACCOUNT_RATE_PHONE_CHANGE_PER_USER", default="5/h")
ACCOUNT_RATE_PHONE_CHANGE_PER_IP = env.str("ACCOUNT_RATE_PHONE_CHANGE_PER_IP", default="10/h")

# Abuse and fraud defences (SMS pumping). See flows/defences.py.
# ISO countries that may get codes; empty: every country Vonage serves.
VERIFY_ALLOWED_COUNTRIES = [
    code.upper() for code in env.list("VERIFY_ALLOWED_COUNTRIES", default=[])
]
# Number types refused outright: the ones attackers are paid for.
VERIFY_BLOCKED_NUMBER_TYPES = env.list(
    "VERIFY_BLOCKED_NUMBER_TYPES",
    default=["premium_rate", "shared_cost", "toll_free", "uan", "pager", "voicemail"],
)
VERIFY_BLOCK_VOIP = env.bool("VERIFY_BLOCK_VOIP", default=False)
# Codes sent per number range (country code + the first national digits).
# Six digits is one exchange of 10,000 numbers in North America, where even a
# busy site sends a few codes in ten minutes and a pumping run dozens.
VERIFY_PREFIX_RATE = env.str("VERIFY_PREFIX_RATE", default="20/10m")
VERIFY_PREFIX_DIGITS = env.int("VERIFY_PREFIX_DIGITS", default=6)
# Site-wide caps on codes sent; past them new starts are refused (and logged
# at ERROR), while codes already sent still complete. Empty: no cap.
VERIFY_MAX_SENDS_PER_HOUR = env.int("VERIFY_MAX_SENDS_PER_HOUR", default=1000)
VERIFY_MAX_SENDS_PER_DAY = env.int("VERIFY_MAX_SENDS_PER_DAY", default=10000)
# Warn when fewer than this share of the codes started in the last hour were
# checked right, once at least VERIFY_CONVERSION_MIN_VOLUME were started.
VERIFY_MIN_CONVERSION = env.float("VERIFY_MIN_CONVERSION", default=0.3)
VERIFY_CONVERSION_MIN_VOLUME = env.int("VERIFY_CONVERSION_MIN_VOLUME", default=20)
# Seconds between two sends (resend or call) of one pending verification.
VERIFY_RESEND_COOLDOWN = env.int("VERIFY_RESEND_COOLDOWN", default=30)
# Numbers that get a fixed code and no SMS, for app-store reviewers and demos:
# "+15005550006=123456,+15005550007=654321". Refused with DEBUG off unless
# VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION is set.
VERIFY_TEST_NUMBERS = env.dict("VERIFY_TEST_NUMBERS", default={})
VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION = env.bool(
    "VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION", default=False
)
if VERIFY_TEST_NUMBERS and not DEBUG and not VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION:
    raise ImproperlyConfigured(
        "VERIFY_TEST_NUMBERS is set with DEBUG off: anyone who knows a test number logs in "
        "with its fixed code. Set VERIFY_ALLOW_TEST_NUMBERS_IN_PRODUCTION=true to allow it."
    )
RATELIMIT_USE_CACHE = "default"
# Every rate is read now, so that a mistyped one stops the start, named,
# rather than the first login that needs it.
for _name in (
    "VERIFY_RATE_START_PER_IP",
    "VERIFY_RATE_START_PER_NUMBER",
    "VERIFY_RATE_CHECK_PER_SESSION",
    "VERIFY_RATE_CHECK_PER_IP",
    "VERIFY_RATE_WRONG_CODES_PER_NUMBER",
    "LOGIN_RATE_PASSWORD_PER_IP",
    "LOGIN_RATE_PASSWORD_PER_USERNAME",
    "ACCOUNT_RATE_PHONE_CHANGE_PER_USER",
    "ACCOUNT_RATE_PHONE_CHANGE_PER_IP",
    "VERIFY_PREFIX_RATE",
):
    try:
        parse_rate(globals()[_name])
    except ValueError as _error:
        raise ImproperlyConfigured(f"{_name}: {_error}") from None
if VERIFY_MAX_SENDS_PER_HOUR < 0 or VERIFY_MAX_SENDS_PER_DAY < 0:
    raise ImproperlyConfigured(
        "VERIFY_MAX_SENDS_PER_HOUR and VERIFY_MAX_SENDS_PER_DAY must be 0 (no cap) or more."
    )

# Vonage (VERIFY_BACKEND=vonage or vonage-legacy) ------------------------------

VONAGE_API_KEY = env.str("VONAGE_API_KEY", default="")
VONAGE_API_SECRET = env.str("VONAGE_API_SECRET", default="")
VONAGE_APPLICATION_ID = env.str("VONAGE_APPLICATION_ID", default="")
# A path to the PEM file, or the PEM text itself.
VONAGE_PRIVATE_KEY = env.str("VONAGE_PRIVATE_KEY", default="", multiline=True)
# Empty: the SDK's default hosts (api.nexmo.com, api-eu.vonage.com for v2…).
VONAGE_API_HOST = env.str("VONAGE_API_HOST", default="")
VONAGE_TIMEOUT = env.float("VONAGE_TIMEOUT", default=10.0)
VERIFY_WORKFLOW = env.list("VERIFY_WORKFLOW", default=["sms", "voice"])
VERIFY_LOCALE = env.str("VERIFY_LOCALE", default="")
VERIFY_LEGACY_WORKFLOW_ID = env.int("VERIFY_LEGACY_WORKFLOW_ID", default=1)
# Seconds before Vonage calls by itself when the code sent by SMS is not used
# (v2 channel_timeout 15-900, v1 next_event_wait 60-900; `manage.py check`
# says which). 0 or empty: the call only comes when the person asks for it.
try:
    VERIFY_VOICE_FALLBACK_AFTER = int(env.str("VERIFY_VOICE_FALLBACK_AFTER", default="") or 0)
except ValueError:
    raise ImproperlyConfigured(
        "VERIFY_VOICE_FALLBACK_AFTER must be a number of seconds, or 0 (or empty) for no "
        "automatic call."
    ) from None

# Verification log -----------------------------------------------------------

# Days a VerificationLog row is kept; `manage.py purgeverificationlog` removes
# older ones (run it daily, e.g. from cron).
VERIFY_LOG_RETENTION_DAYS = env.int("VERIFY_LOG_RETENTION_DAYS", default=90)
if VERIFY_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("VERIFY_LOG_RETENTION_DAYS must be 1 or more.")

# JSON API -----------------------------------------------------------------

# Origins (scheme://host[:port], comma separated) whose browser pages may call
# /api/ cross-origin. Empty, the default: no CORS headers, OPTIONS refused.
# Native mobile apps send no Origin and need nothing here.
API_CORS_ORIGINS = env.list("API_CORS_ORIGINS", default=[])

# Logging ------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# One line per event on stderr: JSON (passwordless/logging.py) for a log
# shipper, the default with DEBUG off; plain text for a person, the default
# in development. stdout is left to what commands print (`manage.py
# verification -v 0 send` prints the request id alone, for `RID=$(…)`);
# containers and service managers collect both.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": LOG_FORMATTERS,
    # While the database or the cache is down, one line a minute names it
    # instead of a traceback per request (passwordless/outages.py).
    "filters": {"outages": {"()": "passwordless.outages.OutageLogFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"filters": ["outages"]},
        "django.contrib.sessions": {"filters": ["outages"]},
        # The Vonage SDK logs request headers and bodies (credentials, codes)
        # at DEBUG: keep it at INFO or above whatever the root level is.
        "vonage": {"level": "INFO"},
        "vonage_http_client": {"level": "INFO"},
        "vonage_verify": {"level": "INFO"},
        "vonage_verify_legacy": {"level": "INFO"},
        "urllib3": {"level": "INFO"},
        "accounts": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
        "flows": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
        "verification": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
        "verificationlog": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
    },
}
