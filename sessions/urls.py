from django.urls import path

from checks import views as check_views
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
    path("<int:pk>/check", check_views.therapist_check, name="session_check"),
    path("<int:pk>/ask-client", check_views.ask_client, name="session_ask_client"),
]
