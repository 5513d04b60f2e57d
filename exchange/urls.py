from django.urls import path

from exchange import views

urlpatterns = [
    path("", views.exchange_home, name="exchange"),
    path("uploads/", views.upload_new, name="exchange_upload_new"),
    path("uploads/<int:pk>/", views.upload_detail, name="exchange_upload"),
    path("uploads/<int:pk>/report.txt", views.upload_report, name="exchange_upload_report"),
    path("uploads/<int:pk>/apply", views.upload_apply, name="exchange_upload_apply"),
    path("uploads/<int:pk>/discard", views.upload_discard, name="exchange_upload_discard"),
    path("export", views.export_download, name="exchange_export"),
]
