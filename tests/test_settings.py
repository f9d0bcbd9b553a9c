"""Settings come from the environment; production refuses to start when they are unsafe.

Settings are evaluated in child processes with a controlled environment: every
variable a case depends on is set explicitly, so a developer's `.env` file
(which real environment variables override) has no say. Most cases are
evaluated together in one child process, each on a fresh import of the
settings module, which is what a start does first; a few start Django for
real (`django.setup()`, `manage.py check`).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as live_settings
from django.utils.module_loading import import_string

from verification import BaseVerificationBackend

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET_KEY = "Zq8x!k2Lm9#pR4tV7wY1bN6cF3hJ5sD0gA_eU-iO+zXcVbNmQwErTyUiOpAsDfGhJkL"
SETUP = "import django; django.setup()"
REFUSED = "django.core.exceptions.ImproperlyConfigured"


def environment(tmp_dir, **overrides):
    """The default environment, every variable spelled out, with `overrides` (None: unset)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "passwordless.settings",
        "DEBUG": "true",
        "SECRET_KEY": "",
        "ALLOWED_HOSTS": "",
        "DATABASE_URL": f"sqlite:///{Path(tmp_dir) / 'db.sqlite3'}",
        "CACHE_URL": "dbcache://django_cache",
        "VERIFY_BACKEND": "console",
        "VERIFY_BRAND": "",
        "VONAGE_BRAND_NAME": "",
        "VERIFY_CODE_LENGTH": "6",
        "VERIFY_CODE_TTL": "300",
        "DEFAULT_PHONE_REGION": "",
        "PASSWORDLESS_SIGNUP": "true",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def production(**overrides):
    """A production environment that is complete, with `overrides` on top."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": PRODUCTION_SECRET_KEY,
        "ALLOWED_HOSTS": "login.example.com",
        "CACHE_URL": "redis://127.0.0.1:6379/0",
        # The console backend is refused with DEBUG off.
        "VERIFY_BACKEND": "vonage",
        "VONAGE_API_KEY": "key",
        "VONAGE_API_SECRET": "secret",
        **overrides,
    }


@pytest.fixture
def run(tmp_path):
    """Run Python in a child process with the default environment plus `overrides`."""

    def run(args, **overrides):
        return subprocess.run(
            [sys.executable, *args],
            cwd=BASE_DIR,
            env=environment(tmp_path, **overrides),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    return run


PROBE = """
import importlib, json, os, sys
cases = json.loads(sys.stdin.read())
results = {}
for name, case in cases.items():
    os.environ.clear()
    os.environ.update(case["env"])
    sys.modules.pop("passwordless.settings", None)
    try:
        module = importlib.import_module("passwordless.settings")
    except Exception as exc:
        results[name] = {"error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"}
    else:
        results[name] = {"values": {key: getattr(module, key) for key in case["names"]}}
print(json.dumps(results, default=str))
"""

# name: (environment overrides, settings to read)
CASES = {}


def case(name, names=(), **overrides):
    CASES[name] = (overrides, list(names))
    return name


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Evaluate the settings of every case in CASES, in one child process."""
    tmp_dir = tmp_path_factory.mktemp("settings")
    cases = {
        name: {"env": environment(tmp_dir, **overrides), "names": names}
        for name, (overrides, names) in CASES.items()
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=environment(tmp_dir),
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refusal(probed, name):
    outcome = probed[name]
    assert "error" in outcome, f"{name} started: {outcome}"
    assert outcome["error"].startswith(REFUSED + ": "), outcome["error"]
    return outcome["error"]


def values(probed, name):
    outcome = probed[name]
    assert "values" in outcome, outcome.get("error")
    return outcome["values"]


# DEBUG off --------------------------------------------------------------------


def test_complete_production_environment_starts(run):
    result = run(["-c", SETUP], **production())
    assert result.returncode == 0, result.stderr


def test_production_without_secret_key_does_not_start(run):
    """Through the real entry point: manage.py stops with the variable named."""
    result = run(["manage.py", "check"], **production(SECRET_KEY=None))
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(REFUSED + ":"), result.stderr
    assert "SECRET_KEY" in last_line


PRODUCTION_OK = case(
    "production",
    ["DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"],
    **production(),
)
SECRET_KEY_CASES = [
    case("secret unset", **production(SECRET_KEY=None)),
    case("secret empty", **production(SECRET_KEY="")),
    case("secret short", **production(SECRET_KEY="too-short")),
    case(
        "secret development",
        **production(SECRET_KEY="django-insecure-development-only-never-use-in-production"),
    ),
]
ALLOWED_HOSTS_CASES = [
    case("hosts unset", **production(ALLOWED_HOSTS=None)),
    case("hosts empty", **production(ALLOWED_HOSTS="")),
]
CACHE_CASES = [
    case("cache unset", **production(CACHE_URL=None)),
    case("cache database", **production(CACHE_URL="dbcache://django_cache")),
    case("cache locmem", **production(CACHE_URL="locmemcache://")),
    case("cache file", **production(CACHE_URL="filecache:///tmp/passwordless-cache")),
    case("cache dummy", **production(CACHE_URL="dummycache://")),
]


def test_production_settings_are_taken_as_given(probed):
    assert values(probed, PRODUCTION_OK) == {
        "DEBUG": False,
        "SECRET_KEY": PRODUCTION_SECRET_KEY,
        "ALLOWED_HOSTS": ["login.example.com"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


@pytest.mark.parametrize("name", SECRET_KEY_CASES)
def test_debug_off_without_a_real_secret_key_refuses_to_start(probed, name):
    assert "SECRET_KEY" in refusal(probed, name)


@pytest.mark.parametrize("name", ALLOWED_HOSTS_CASES)
def test_debug_off_without_allowed_hosts_refuses_to_start(probed, name):
    assert "ALLOWED_HOSTS" in refusal(probed, name)


@pytest.mark.parametrize("name", CACHE_CASES)
def test_debug_off_with_a_cache_that_is_not_shared_and_atomic_refuses_to_start(probed, name):
    assert "CACHE_URL" in refusal(probed, name)


def test_debug_off_deploy_check_is_clean(run):
    result = run(["manage.py", "check", "--deploy"], **production())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


# The default configuration -------------------------------------------------------


def test_default_configuration_check_reports_no_issues(run):
    result = run(["manage.py", "check"])
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


DEFAULTS = case(
    "defaults",
    [
        "DEBUG",
        "VERIFICATION_BACKEND",
        "VERIFY_BRAND",
        "VERIFY_CODE_LENGTH",
        "VERIFY_CODE_TTL",
        "PASSWORDLESS_SIGNUP",
        "DEFAULT_PHONE_REGION",
        "SESSION_ENGINE",
        "AUTH_USER_MODEL",
        "DATABASES",
    ],
    **{
        name: None
        for name in (
            "DEBUG",
            "DATABASE_URL",
            "VERIFY_BACKEND",
            "VERIFY_BRAND",
            "VONAGE_BRAND_NAME",
            "VERIFY_CODE_LENGTH",
            "VERIFY_CODE_TTL",
            "PASSWORDLESS_SIGNUP",
            "DEFAULT_PHONE_REGION",
        )
    },
)


def test_default_configuration_is_the_embedded_one(probed):
    found = values(probed, DEFAULTS)
    database = found.pop("DATABASES")["default"]
    assert found == {
        "DEBUG": True,
        "VERIFICATION_BACKEND": "verification.backends.console.VerificationBackend",
        "VERIFY_BRAND": "Passwordless",
        "VERIFY_CODE_LENGTH": 6,
        "VERIFY_CODE_TTL": 300,
        "PASSWORDLESS_SIGNUP": True,
        "DEFAULT_PHONE_REGION": None,
        "SESSION_ENGINE": "passwordless.sessions.db",
        "AUTH_USER_MODEL": "accounts.User",
    }
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(database["NAME"]) == BASE_DIR / "db.sqlite3"


def test_sessions_are_kept_on_the_server():
    # Signed-cookie sessions could not be killed at logout.
    assert live_settings.SESSION_ENGINE != "django.contrib.sessions.backends.signed_cookies"
    assert "django.contrib.sessions.middleware.SessionMiddleware" in live_settings.MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" in live_settings.MIDDLEWARE


# Verification settings -----------------------------------------------------------

ALIASES = {
    "console": "verification.backends.console.VerificationBackend",
    "locmem": "verification.backends.locmem.VerificationBackend",
    "vonage": "verification.backends.vonage.VerificationBackend",
    "vonage-legacy": "verification.backends.vonage_legacy.VerificationBackend",
    "verification.backends.locmem.VerificationBackend": (
        "verification.backends.locmem.VerificationBackend"
    ),
}
ALIAS_CASES = {
    alias: case(f"backend {alias}", ["VERIFICATION_BACKEND"], VERIFY_BACKEND=alias)
    for alias in ALIASES
}


@pytest.mark.parametrize("alias", list(ALIASES))
def test_verify_backend_aliases_resolve_to_backend_classes(probed, alias):
    dotted_path = values(probed, ALIAS_CASES[alias])["VERIFICATION_BACKEND"]
    assert dotted_path == ALIASES[alias]
    backend_class = import_string(dotted_path)
    assert issubclass(backend_class, BaseVerificationBackend)
    assert backend_class.__name__ == "VerificationBackend"


BRAND_CASES = [
    (
        case("brand neither", ["VERIFY_BRAND"], VERIFY_BRAND=None, VONAGE_BRAND_NAME=None),
        "Passwordless",
    ),
    (case("brand both empty", ["VERIFY_BRAND"]), "Passwordless"),
    (
        case(
            "brand vonage only", ["VERIFY_BRAND"], VERIFY_BRAND=None, VONAGE_BRAND_NAME="Acme Bank"
        ),
        "Acme Bank",
    ),
    (case("brand empty vonage", ["VERIFY_BRAND"], VONAGE_BRAND_NAME="Acme Bank"), "Acme Bank"),
    (
        case("brand both", ["VERIFY_BRAND"], VERIFY_BRAND="My Site", VONAGE_BRAND_NAME="Acme Bank"),
        "My Site",
    ),
    (
        case("brand verify only", ["VERIFY_BRAND"], VERIFY_BRAND="My Site", VONAGE_BRAND_NAME=None),
        "My Site",
    ),
]


@pytest.mark.parametrize(("name", "brand"), BRAND_CASES)
def test_verify_brand_falls_back_to_vonage_brand_name(probed, name, brand):
    assert values(probed, name)["VERIFY_BRAND"] == brand


CODE_CASES = [
    (case("ttl 601", VERIFY_CODE_TTL="601"), "VERIFY_CODE_TTL"),
    (case("ttl 3600", VERIFY_CODE_TTL="3600"), "VERIFY_CODE_TTL"),
    (case("ttl 10", VERIFY_CODE_TTL="10"), "VERIFY_CODE_TTL"),
    (case("length 3", VERIFY_CODE_LENGTH="3"), "VERIFY_CODE_LENGTH"),
    (case("length 11", VERIFY_CODE_LENGTH="11"), "VERIFY_CODE_LENGTH"),
]


@pytest.mark.parametrize(("name", "variable"), CODE_CASES)
def test_codes_that_would_live_too_long_or_be_too_weak_are_refused(probed, name, variable):
    assert variable in refusal(probed, name)


IPV6_MASK_CASES = [
    case("ipv6 mask 16", RATELIMIT_IPV6_MASK="16"),
    case("ipv6 mask 129", RATELIMIT_IPV6_MASK="129"),
]


@pytest.mark.parametrize("name", IPV6_MASK_CASES)
def test_an_ipv6_mask_that_counts_no_client_or_whole_providers_is_refused(probed, name):
    assert "RATELIMIT_IPV6_MASK" in refusal(probed, name)


IPV6_MASK_DEFAULT = case("ipv6 mask default", ["RATELIMIT_IPV6_MASK"])


def test_ipv6_clients_are_counted_per_64_by_default(probed):
    assert values(probed, IPV6_MASK_DEFAULT)["RATELIMIT_IPV6_MASK"] == 64


FROM_ENVIRONMENT = case(
    "from environment",
    ["VERIFY_CODE_LENGTH", "VERIFY_CODE_TTL", "DEFAULT_PHONE_REGION", "PASSWORDLESS_SIGNUP"],
    VERIFY_CODE_LENGTH="8",
    VERIFY_CODE_TTL="600",
    DEFAULT_PHONE_REGION="gb",
    PASSWORDLESS_SIGNUP="false",
)


def test_code_settings_are_read_from_the_environment(probed):
    assert values(probed, FROM_ENVIRONMENT) == {
        "VERIFY_CODE_LENGTH": 8,
        "VERIFY_CODE_TTL": 600,
        "DEFAULT_PHONE_REGION": "GB",
        "PASSWORDLESS_SIGNUP": False,
    }
