from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from flows import views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("flows.urls")),
    path("", include("accounts.urls")),
    # The verification log's admin pages before it had an app of its own:
    # operators' bookmarks and links in tickets still lead there.
    re_path(
        r"^admin/accounts/verificationlog/(?P<rest>.*)$",
        RedirectView.as_view(
            url="/admin/verificationlog/verificationlog/%(rest)s", query_string=True
        ),
    ),
    path("admin/", admin.site.urls),
    path("api/", include("flows.api.urls")),
]

# An outage of the database or the cache answers 503, anything else Django's 500.
handler500 = "passwordless.views.server_error"
# A session the database could not save is a 400 to Django: an outage too.
handler400 = "passwordless.views.bad_request"
