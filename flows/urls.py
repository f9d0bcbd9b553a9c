from django.urls import path

from . import views

app_name = "flows"

urlpatterns = [
    path("login/", views.PhoneLoginView.as_view(), name="login"),
    path("verify/", views.VerifyView.as_view(), name="verify"),
    path("verify/resend/", views.verify_resend, name="verify_resend"),
    path("verify/call/", views.verify_call, name="verify_call"),
    path("verify/cancel/", views.verify_cancel, name="verify_cancel"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("login/password/", views.PasswordLoginView.as_view(), name="password_login"),
]
