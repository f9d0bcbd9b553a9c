from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.PhoneLoginView.as_view(), name="login"),
    path("verify/", views.VerifyView.as_view(), name="verify"),
    path("verify/resend/", views.verify_resend, name="verify_resend"),
    path("verify/call/", views.verify_call, name="verify_call"),
    path("verify/cancel/", views.verify_cancel, name="verify_cancel"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("login/password/", views.PasswordLoginView.as_view(), name="password_login"),
    path("account/", views.AccountView.as_view(), name="account"),
    path("account/phone/", views.PhoneChangeView.as_view(), name="phone_change"),
    path("account/phone/remove/", views.phone_remove, name="phone_remove"),
    path("account/2fa/enable/", views.second_factor_enable, name="second_factor_enable"),
    path("account/2fa/disable/", views.second_factor_disable, name="second_factor_disable"),
    path("account/password/", views.PasswordView.as_view(), name="password"),
]
