"""The static files storage of production: WhiteNoise's, each file's URL worked out once.

With the manifest (STATIC_MANIFEST, the default with DEBUG off), the URL of a
name depends only on the manifest, read when the storage is made, and on
STATIC_URL. Django's storage works it out again on every `{% static %}`
(unquoting, splitting and joining URLs): this one keeps each answer for the
life of the storage, whose STATIC_URL is also fixed when it is made, and
forgets them when a new manifest is saved (collectstatic). With DEBUG on,
names are not hashed, as with Django. A name the manifest lacks raises as
before and is not kept. What it saves: bench/README.md.
`tests/test_staticfiles.py` checks every answer against WhiteNoise's own.
"""

from __future__ import annotations

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Names come from templates, a fixed set; a bound all the same.
MAX_URLS = 1000


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs):
        self._urls = {}
        super().__init__(*args, **kwargs)

    def url(self, name, force=False):
        if force or settings.DEBUG:
            return super().url(name, force)
        try:
            return self._urls[name]
        except KeyError:
            pass
        url = super().url(name)
        if len(self._urls) < MAX_URLS:
            self._urls[name] = url
        return url

    def save_manifest(self):
        super().save_manifest()
        self._urls = {}
