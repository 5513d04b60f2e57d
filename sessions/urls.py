from django.urls import path

from reminders import views as reminder_views
from ruptures import views as rupture_views
from sessions import views

urlpatterns = [
    path("<int:pk>/", views.session_detail, name="session_detail"),
    path("<int:pk>/status", views.session_status, name="session_status"),
    path("<int:pk>/no-rupture", views.session_no_rupture, name="session_no_rupture"),
    path("<int:pk>/delete", views.session_delete, name="session_delete"),
    path("<int:pk>/ruptures/new", rupture_views.rupture_new, name="rupture_new"),
    path("<int:pk>/brief", reminder_views.session_brief, name="session_brief"),
]
