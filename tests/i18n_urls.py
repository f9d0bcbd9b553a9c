"""The site's URLs under i18n_patterns: /en/login/, /fr/login/, … (test_extension_points_pages)."""

from django.conf.urls.i18n import i18n_patterns

from passwordless.urls import urlpatterns as site_urlpatterns

urlpatterns = i18n_patterns(*site_urlpatterns)
