from django.utils import timezone

from reminders.models import SweepHeartbeat
from tests.conftest import login


def test_it_reports_a_healthy_database_and_redis_to_an_admin(client, admin_user, settings, redis_url):
    settings.REDIS_URL = redis_url
    SweepHeartbeat.objects.create(finished_at=timezone.now())  # the reminder sweep: tests/test_reminders.py
    login(client, admin_user)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "sweep": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_it_tells_anyone_else_the_status_alone(client, therapist, settings, redis_url):
    settings.REDIS_URL = redis_url
    SweepHeartbeat.objects.create(finished_at=timezone.now())
    assert client.get("/healthz").json() == {"status": "ok"}
    login(client, therapist)
    assert client.get("/healthz").json() == {"status": "ok"}


def test_it_answers_503_when_redis_cannot_be_reached(client, admin_user, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz").json() == {"status": "error"}  # how the broker is set up stays unsaid
    login(client, admin_user)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error:")
