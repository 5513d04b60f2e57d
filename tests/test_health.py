from django.utils import timezone

from reminders.models import SweepHeartbeat


def test_it_reports_a_healthy_database_and_redis(client, db, settings, redis_url):
    settings.REDIS_URL = redis_url
    SweepHeartbeat.objects.create(finished_at=timezone.now())  # the reminder sweep: tests/test_reminders.py
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "sweep": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_it_answers_503_when_redis_cannot_be_reached(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error:")
