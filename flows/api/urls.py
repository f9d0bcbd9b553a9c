"""The JSON API, under /api/ (see passwordless/urls.py)."""

from django.urls import path, re_path

from . import views

app_name = "api"

urlpatterns = [
    path("verify/request", views.verify_request, name="verify_request"),
    path("verify/check", views.verify_check, name="verify_check"),
    path("verify/cancel", views.verify_cancel, name="verify_cancel"),
    path("verify/next", views.verify_next, name="verify_next"),
    path("openapi.json", views.openapi_document, name="openapi"),
    # Last: anything else under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^(?P<path>.*)$", views.api_not_found, name="not_found"),
]
