from django.urls import path

from supervision import views

urlpatterns = [
    path("", views.dashboard, name="supervision_dashboard"),
    path("ruptures/<int:pk>/discuss", views.rupture_discuss, name="supervision_discuss"),
    path("<str:username>/", views.caseload, name="supervision_caseload"),
]
