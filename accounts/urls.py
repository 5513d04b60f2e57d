from django.urls import include, path

from accounts import mfa_views
from accounts.views import SignInView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("mfa/", mfa_views.overview, name="mfa_overview"),
    path("mfa/setup", mfa_views.setup, name="mfa_setup"),
    path("mfa/verify", mfa_views.verify, name="mfa_verify"),
    path("mfa/recovery-codes", mfa_views.recovery_codes, name="mfa_recovery_codes"),
    path("mfa/remove", mfa_views.remove, name="mfa_remove"),
    path("", include("django.contrib.auth.urls")),
]
