from email.utils import parsedate_to_datetime

from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import resolve
from django.views import View
from django.views.decorators.cache import never_cache as django_never_cache

from accounts import views
from accounts.decorators import DecoratorsMixin, never_cache


def respond(decorator, headers=None):
    def view(request):
        response = HttpResponse("page")
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    return decorator(view)(RequestFactory().get("/"))


def directives(response):
    return {part.strip() for part in response["Cache-Control"].split(",")}


def test_never_cache_writes_what_djangos_writes():
    ours, django = respond(never_cache), respond(django_never_cache)
    assert ours["Cache-Control"] == django["Cache-Control"]
    expires = parsedate_to_datetime(ours["Expires"])
    assert abs((expires - parsedate_to_datetime(django["Expires"])).total_seconds()) <= 1


def test_never_cache_keeps_a_views_own_directives_as_django_does():
    ours = respond(never_cache, {"Cache-Control": "no-transform, max-age=600"})
    django = respond(django_never_cache, {"Cache-Control": "no-transform, max-age=600"})
    assert directives(ours) == directives(django)
    assert {"no-transform", "max-age=0", "no-store", "private"} <= directives(ours)


def test_never_cache_leaves_a_views_expiry_date_alone():
    response = respond(never_cache, {"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert response["Expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert "no-store" in directives(response)


def test_a_views_decorators_are_applied_once_the_first_outermost():
    applied = []

    def named(name):
        def decorator(view):
            applied.append(name)

            def wrapper(request, *args, **kwargs):
                response = view(request, *args, **kwargs)
                response["X-Order"] = response.get("X-Order", "") + name
                return response

            return wrapper

        return decorator

    class Page(DecoratorsMixin, View):
        decorators = (named("outer"), named("inner"))

        def get(self, request):
            return HttpResponse("page")

    view = Page.as_view()
    responses = [view(RequestFactory().get("/")) for _ in range(3)]
    assert applied == ["inner", "outer"]
    assert [response["X-Order"] for response in responses] == ["innerouter"] * 3


def test_the_login_pages_are_still_their_classes():
    assert resolve("/login/").func.view_class is views.PhoneLoginView
    assert resolve("/verify/").func.view_class is views.VerifyView
