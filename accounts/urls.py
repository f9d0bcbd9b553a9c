from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("account/", views.AccountView.as_view(), name="account"),
    path("account/phone/", views.PhoneChangeView.as_view(), name="phone_change"),
    path("account/phone/remove/", views.phone_remove, name="phone_remove"),
    path("account/2fa/enable/", views.second_factor_enable, name="second_factor_enable"),
    path("account/2fa/disable/", views.second_factor_disable, name="second_factor_disable"),
    path("account/password/", views.PasswordView.as_view(), name="password"),
]
