"""A PDF report made by a real Celery worker through a real Redis, both started here."""

import io
import os
import shutil
from datetime import timedelta

import pypdf
import pytest

from reports.models import JobStatus, ReportJob
from reports.report import Filters
from reports.services import request_pdf
from supervision.measures import Period
from tests.brokers import CeleryWorker, RedisServer, publishing_to, wait_until
from tests.factories import make_client, make_rupture, make_session
from tests.test_reminders_worker import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here"),
]


@pytest.fixture
def worker(tmp_path):
    server = RedisServer()
    server.start()
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": server.url}
    started = CeleryWorker(env, tmp_path / "worker.log")
    try:
        started.start()
        yield server, started
    finally:
        started.stop()
        server.stop()


def test_the_worker_makes_the_pdf_the_requester_asked_for(role_groups, admin_user, therapist, worker):
    from django.db import transaction
    from django.utils import timezone

    server, celery = worker
    client = make_client(therapist)
    for day in range(1, 8):
        make_rupture(make_session(client, days_ago=day))
    today = timezone.localdate()
    filters = Filters(period=Period(today - timedelta(days=10), today))

    with publishing_to(server.url), transaction.atomic():
        job = request_pdf(user=admin_user, filters=filters)

    wait_until(lambda: ReportJob.objects.filter(pk=job.pk, status=JobStatus.DONE).exists(), timeout=60,
               what=f"the worker to make the PDF\n{celery.log()}")
    content = bytes(ReportJob.objects.values_list("content", flat=True).get(pk=job.pk))
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(content)).pages)
    assert "Alliance report" in text and f"Made for {admin_user.username}" in text
    assert "reports.make_pdf" in celery.log() and "succeeded" in celery.log()
    # The worker's log has the outcome only: no figures, no names.
    assert therapist.username not in celery.log()
