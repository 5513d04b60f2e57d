from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("accounts.home_urls")),
    path("clients/", include("sessions.client_urls")),
    path("sessions/", include("sessions.urls")),
    path("ruptures/", include("ruptures.urls")),
    path("exchange/", include("exchange.urls")),
    path("supervision/", include("supervision.urls")),
    path("deletions/", include("audit.urls")),
    path("reports/", include("reports.urls")),
    # The client's one-time alliance check link: short, since it is typed or scanned.
    path("c/", include("checks.urls")),
]

handler400 = "config.errors.bad_request"
