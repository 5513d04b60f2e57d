from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import mfa_views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("mfa/", mfa_views.overview, name="mfa_overview"),
    path("mfa/setup", mfa_views.setup, name="mfa_setup"),
    path("mfa/verify", mfa_views.verify, name="mfa_verify"),
    path("mfa/recovery-codes", mfa_views.recovery_codes, name="mfa_recovery_codes"),
    path("mfa/remove", mfa_views.remove, name="mfa_remove"),
    path("", include("django.contrib.auth.urls")),
]
