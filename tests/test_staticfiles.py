"""The production static files storage (passwordless/staticfiles.py) against WhiteNoise's own.

It keeps each URL it works out: every answer must be the one WhiteNoise's
storage gives for the same manifest and settings, a missing file must still
fail, and DEBUG or a new manifest must not leave an old answer.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from whitenoise.storage import CompressedManifestStaticFilesStorage

from passwordless.staticfiles import ManifestStaticFilesStorage

MANIFEST = {
    "css/site.css": "css/site.0726698a99c5.css",
    "js/send-once.js": "js/send-once.1a2b3c4d5e6f.js",
    "img/a b.svg": "img/a b.77aa88bb99cc.svg",
}
NAMES = [
    "css/site.css",
    "js/send-once.js",
    "img/a b.svg",
    "img/a%20b.svg",
    "css/site.css?v=2#top",
    "css/site.css#top",
    "css/",
]


@pytest.fixture
def collected(tmp_path, settings):
    settings.DEBUG = False
    settings.STATIC_URL = "/static/"
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"paths": MANIFEST, "version": "1.1", "hash": "0"})
    )
    return tmp_path


def storages(location):
    return ManifestStaticFilesStorage(location=location), CompressedManifestStaticFilesStorage(
        location=location
    )


def test_every_url_is_whitenoises_the_first_time_and_after(collected):
    ours, theirs = storages(collected)
    for name in NAMES:
        assert ours.url(name) == theirs.url(name), name
        assert ours.url(name) == theirs.url(name), name
    assert ours.url("css/site.css") == "/static/css/site.0726698a99c5.css"


def test_a_file_missing_from_the_manifest_fails_every_time(collected):
    ours, theirs = storages(collected)
    for _ in range(2):
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            theirs.url("js/gone.js")
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            ours.url("js/gone.js")


def test_a_storage_made_for_another_static_url_answers_with_it(collected):
    with override_settings(STATIC_URL="https://cdn.example.com/assets/"):
        ours, theirs = storages(collected)
    for name in NAMES:
        assert ours.url(name) == theirs.url(name), name
    assert ours.url("css/site.css").startswith("https://cdn.example.com/assets/")


def test_with_debug_on_the_names_are_not_hashed_as_with_django(collected, settings):
    ours, theirs = storages(collected)
    ours.url("css/site.css")
    settings.DEBUG = True
    assert ours.url("css/site.css") == theirs.url("css/site.css") == "/static/css/site.css"


def test_a_new_manifest_is_used_once_saved(collected):
    ours, _theirs = storages(collected)
    assert ours.url("css/site.css") == "/static/css/site.0726698a99c5.css"
    ours.hashed_files = {**ours.hashed_files, "css/site.css": "css/site.ffffffffffff.css"}
    ours.save_manifest()
    assert ours.url("css/site.css") == "/static/css/site.ffffffffffff.css"
