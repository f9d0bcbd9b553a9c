"""`manage.py check` stops a Vonage backend that lacks what it needs, or a database
cache without its table, and names the fix."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from flows.checks import check_cache_tables
from verification.checks import check_verification_backend

V2 = "verification.backends.vonage.VerificationBackend"
LEGACY = "verification.backends.vonage_legacy.VerificationBackend"


def errors():
    return {message.id: message for message in check_verification_backend()}


@pytest.fixture
def vonage(settings):
    settings.VERIFICATION_BACKEND = V2
    settings.VONAGE_API_KEY = "key"
    settings.VONAGE_API_SECRET = "secret"
    settings.VONAGE_APPLICATION_ID = ""
    settings.VONAGE_PRIVATE_KEY = ""
    settings.VERIFY_WORKFLOW = ["sms", "voice"]
    settings.VERIFY_LOCALE = ""
    return settings


@pytest.fixture
def legacy(vonage):
    vonage.VERIFICATION_BACKEND = LEGACY
    vonage.VERIFY_LEGACY_WORKFLOW_ID = 1
    return vonage


def test_console_and_configured_vonage_backends_pass(settings, vonage):
    assert errors() == {}
    settings.VERIFICATION_BACKEND = "verification.backends.console.VerificationBackend"
    assert errors() == {}


@pytest.mark.django_db
def test_manage_py_check_runs_the_check_and_fails_without_credentials(vonage):
    vonage.VONAGE_API_KEY = ""

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    assert "verification.E002" in str(caught.value)
    assert "VONAGE_API_KEY and VONAGE_API_SECRET" in str(caught.value)


def test_v2_without_credentials_names_both_ways_to_authenticate(vonage):
    vonage.VONAGE_API_SECRET = ""

    error = errors()["verification.E002"]
    assert "VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY" in error.msg
    assert "VONAGE_API_KEY and VONAGE_API_SECRET" in error.hint


def test_v2_with_an_application_and_its_key_needs_no_api_secret(vonage, vonage_emulator):
    vonage.VONAGE_API_KEY = vonage.VONAGE_API_SECRET = ""
    vonage.VONAGE_APPLICATION_ID = vonage_emulator.application_id
    vonage.VONAGE_PRIVATE_KEY = vonage_emulator.private_key_pem

    assert errors() == {}


def test_half_a_jwt_configuration_is_an_error(vonage):
    vonage.VONAGE_APPLICATION_ID = "a1b2c3"

    assert "VONAGE_PRIVATE_KEY" in errors()["verification.E003"].msg


def test_an_unreadable_private_key_is_an_error(vonage, tmp_path):
    vonage.VONAGE_APPLICATION_ID = "a1b2c3"
    vonage.VONAGE_PRIVATE_KEY = str(tmp_path / "missing.key")

    error = errors()["verification.E004"]
    assert "VONAGE_PRIVATE_KEY" in error.msg and "path" in error.hint


def test_a_private_key_that_is_no_key_is_an_error_that_does_not_show_it(vonage):
    vonage.VONAGE_APPLICATION_ID = "a1b2c3"
    vonage.VONAGE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"

    error = errors()["verification.E004"]
    assert "not a key" not in error.msg


def test_legacy_needs_the_api_key_and_secret_even_with_an_application(legacy):
    legacy.VONAGE_API_SECRET = ""
    legacy.VONAGE_APPLICATION_ID = "a1b2c3"

    error = errors()["verification.E002"]
    assert "vonage-legacy" in error.msg and "VONAGE_APPLICATION_ID" not in error.msg


@pytest.mark.parametrize("length", [5, 8, 10])
def test_legacy_takes_4_or_6_digit_codes_only(legacy, length):
    legacy.VERIFY_CODE_LENGTH = length

    error = errors()["verification.E005"]
    assert f"VERIFY_CODE_LENGTH={length}" in error.msg
    assert "VERIFY_CODE_LENGTH=6" in error.hint


@pytest.mark.parametrize("length", [4, 6])
def test_legacy_code_lengths_it_takes(legacy, length):
    legacy.VERIFY_CODE_LENGTH = length

    assert errors() == {}


def test_v2_takes_8_digit_codes(vonage):
    vonage.VERIFY_CODE_LENGTH = 8

    assert errors() == {}


@pytest.mark.parametrize(
    "workflow", [[], ["sms", "pigeon"], ["sms", "sms"], ["sms", "voice", "sms", "voice"]]
)
def test_a_workflow_this_site_cannot_send_is_an_error(vonage, workflow):
    vonage.VERIFY_WORKFLOW = workflow

    assert "sms, voice" in errors()["verification.E006"].hint


def test_a_legacy_workflow_id_out_of_range_is_an_error(legacy):
    legacy.VERIFY_LEGACY_WORKFLOW_ID = 9

    assert "VERIFY_LEGACY_WORKFLOW_ID=9" in errors()["verification.E007"].msg


def test_a_locale_the_api_does_not_take_is_an_error(vonage):
    vonage.VERIFY_LOCALE = "xx-yy"

    assert "en-gb" in errors()["verification.E008"].hint


def test_a_brand_too_long_for_v2_may_suit_v1(legacy):
    legacy.VERIFY_BRAND = "Seventeen letters"  # 17: v1 takes 18, the v2 SDK 16
    assert errors() == {}

    legacy.VERIFICATION_BACKEND = V2
    assert "1 to 16" in errors()["verification.E009"].msg


def test_a_timeout_of_zero_is_an_error(vonage):
    vonage.VONAGE_TIMEOUT = 0

    assert "VONAGE_TIMEOUT" in errors()["verification.E010"].hint


def test_a_backend_path_that_does_not_import_is_an_error(settings):
    settings.VERIFICATION_BACKEND = "verification.backends.nowhere.VerificationBackend"

    assert "vonage-legacy" in errors()["verification.E001"].hint


# The database cache's table ------------------------------------------------------

DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"


@pytest.mark.django_db
def test_a_database_cache_without_its_table_stops_check_naming_the_table_and_the_fix(settings):
    settings.CACHES = {
        **settings.CACHES,
        "extra": {"BACKEND": DATABASE_CACHE, "LOCATION": "extra_cache_table"},
    }

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    text = str(caught.value)
    assert "flows.E011" in text
    assert "The cache table 'extra_cache_table' (CACHES['extra'], a database cache)" in text
    assert "HINT: Create it: python manage.py createcachetable" in text


@pytest.mark.django_db
def test_database_caches_with_their_tables_and_other_caches_pass(settings):
    settings.CACHES = {
        "default": {"BACKEND": DATABASE_CACHE, "LOCATION": "django_cache"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    call_command("createcachetable", verbosity=0)

    assert check_cache_tables(databases=["default"]) == []
    assert check_cache_tables() == []
