from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("login/", views.login_view),
    path("verify/", views.verify_view),
]
