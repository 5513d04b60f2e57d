from django.urls import path

from ruptures import views

urlpatterns = [
    path("<int:pk>/", views.rupture_detail, name="rupture_detail"),
    path("<int:pk>/edit", views.rupture_edit, name="rupture_edit"),
    path("<int:pk>/attempts/new", views.attempt_new, name="attempt_new"),
    path("<int:pk>/status", views.rupture_status, name="rupture_status"),
    path("<int:pk>/delete", views.rupture_delete, name="rupture_delete"),
]
