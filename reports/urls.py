from django.urls import path

from reports import views

urlpatterns = [
    path("alliance/", views.alliance, name="report_alliance"),
    path("alliance/report.csv", views.alliance_csv, name="report_alliance_csv"),
    path("alliance/report.xlsx", views.alliance_xlsx, name="report_alliance_xlsx"),
    path("alliance/pdf", views.alliance_pdf, name="report_alliance_pdf"),
    path("research/", views.research, name="report_research"),
    path("jobs/<uuid:job_id>/", views.job, name="report_job"),
    path("jobs/<uuid:job_id>/download", views.job_download, name="report_job_download"),
]
