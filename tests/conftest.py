import importlib
import os
import shutil
import time

import pytest
from django.contrib.auth.models import Group

from accounts import mfa
from accounts.middleware import SIGNED_IN_AT
from accounts.models import Role
from tests.brokers import RedisServer
from tests.factories import make_client, make_rupture, make_session, make_user, supervise
from tests.outside import pytest_configure, pytest_sessionfinish  # noqa: F401 (pytest's hooks)


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _personas_sign_in_with_a_password_alone(settings):
    """Most tests are about what a role may do, not how it signs in: MFA is off for them.

    Tests of the second factor, and the route-by-role matrix, use `mfa_enforced`.
    """
    settings.MFA_REQUIRED_ROLES = []


@pytest.fixture(autouse=True)
def _live_dashboard_figures(settings):
    """Dashboards compute their figures afresh on every request, unless a test caches them."""
    settings.SUPERVISION_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _client_pages_not_rate_limited(settings):
    """The per-address limit of /c/<token> counts in the shared cache across tests and runs;
    the test of the limit sets its own."""
    settings.CLIENT_CHECK_RATE_LIMIT = 1_000_000


@pytest.fixture
def mfa_enforced(settings):
    settings.MFA_REQUIRED_ROLES = ["supervisor", "admin"]


@pytest.fixture(autouse=True, scope="session")
def _tasks_in_process():
    """Tasks run in the test process, as in the demo: a test that saves a rupture must
    not leave a message in the machine's shared Redis. The worker tests start their own."""
    from config.celery import app

    app.conf.task_always_eager = True


@pytest.fixture(scope="session")
def redis_url():
    """The Redis the suite runs against: REDIS_URL's, else one the suite starts itself.

    Without REDIS_URL (the README's default) no Redis is assumed to be running: a fresh
    machine has none, and the machine's own may belong to someone else.
    """
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis: set REDIS_URL or install redis-server")
    server = RedisServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def role_groups(db):
    """The role groups a migration made, with the admin's permissions on the admin site,
    which an earlier transactional test flushes: a transactional test that makes people
    asks for this before any persona."""
    from django.contrib.auth.models import Permission

    made_by = importlib.import_module("accounts.migrations.0002_role_groups")
    for role in Role.values:
        Group.objects.get_or_create(name=role)
    admin = Group.objects.get(name=Role.ADMIN)
    for app_label, model, actions in made_by.ADMIN_PERMISSIONS:
        admin.permissions.add(*Permission.objects.filter(
            content_type__app_label=app_label, codename__in=[f"{action}_{model}" for action in actions]
        ))


@pytest.fixture
def therapist(db):
    return make_user(Role.THERAPIST, username="dlee", display_name="Dana Lee")


@pytest.fixture
def other_therapist(db):
    return make_user(Role.THERAPIST, username="apatel", display_name="Asha Patel")


@pytest.fixture
def supervisor(therapist):
    user = make_user(Role.SUPERVISOR, username="mokafor", display_name="M. Okafor")
    supervise(user, therapist)
    return user


@pytest.fixture
def other_supervisor(other_therapist):
    user = make_user(Role.SUPERVISOR, username="rlindqvist")
    supervise(user, other_therapist)
    return user


@pytest.fixture
def admin_user(db):
    return make_user(Role.ADMIN, username="admin")


@pytest.fixture
def client_record(therapist):
    """One of `therapist`'s clients (named so as not to shadow pytest-django's `client`)."""
    return make_client(therapist, code="C-0001")


@pytest.fixture
def held_session(client_record):
    return make_session(client_record, days_ago=1)


@pytest.fixture
def rupture(held_session):
    return make_rupture(held_session, plan="Ask how the letter question landed.")


def login(client, user):
    """Sign in as `user`, with the session as the first page after signing in leaves it.

    The first request of a session stamps when it began and whether the user has a
    second factor; doing it here keeps query counts about the page, not the sign-in.
    """
    client.force_login(user)
    session = client.session
    session[SIGNED_IN_AT] = time.time()
    session[mfa.ENROLLED] = False
    session.save()
    return client


@pytest.fixture
def as_therapist(client, therapist):
    return login(client, therapist)


@pytest.fixture
def as_other_therapist(client, other_therapist):
    return login(client, other_therapist)


@pytest.fixture
def as_supervisor(client, supervisor):
    return login(client, supervisor)


@pytest.fixture
def as_admin(client, admin_user):
    return login(client, admin_user)


@pytest.fixture
def shipped_instruments(db):
    """The alliance check a migration loads, which an earlier transactional test flushes."""
    from checks.instruments import SHIPPED, load_file
    from checks.models import Instrument

    if not Instrument.objects.filter(slug="alliance_check").exists():
        load_file(SHIPPED.read_bytes(), instrument_model=Instrument)
    return Instrument.objects.filter(slug="alliance_check")
