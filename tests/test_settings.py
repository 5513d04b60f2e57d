import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from accounts.models import Role, User
from accounts.services import set_role
from config.env import env_bool, env_int, env_list, env_str
from tests.factories import make_user

VAR = "RUPTURE_LOG_TEST_VALUE"


@pytest.fixture
def unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)


# --- config/env.py ------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "y"])
def test_it_refuses_a_bool_it_cannot_read(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured, match=VAR):
        env_bool(VAR, False)


@pytest.mark.parametrize(
    "raw, expected",
    [("1", True), ("true", True), (" Yes ", True), ("ON", True),
     ("0", False), ("false", False), ("no", False), ("off", False), ("", False)],
)
def test_it_reads_a_bool(monkeypatch, raw, expected):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, not expected) is expected


def test_it_falls_back_to_the_default_bool_when_unset(unset):
    assert env_bool(VAR, True) is True
    assert env_bool(VAR, False) is False


@pytest.mark.parametrize("raw", ["x", "1.5", "", "ten"])
def test_it_refuses_an_int_it_cannot_read(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int(VAR, 3)


def test_it_refuses_an_int_below_the_minimum(monkeypatch):
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int(VAR, 15, minimum=1)


def test_it_reads_an_int(monkeypatch):
    monkeypatch.setenv(VAR, "42")
    assert env_int(VAR, 3, minimum=1) == 42
    monkeypatch.setenv(VAR, "1")
    assert env_int(VAR, 3, minimum=1) == 1


def test_it_falls_back_to_the_default_int_when_unset(unset):
    assert env_int(VAR, 15, minimum=1) == 15


def test_it_reads_a_list_and_a_string(monkeypatch, unset):
    assert env_list(VAR, ["localhost"]) == ["localhost"]
    assert env_str(VAR, "fallback") == "fallback"
    monkeypatch.setenv(VAR, " a.example, ,b.example ")
    assert env_list(VAR, []) == ["a.example", "b.example"]
    assert env_str(VAR) == " a.example, ,b.example "


# --- accounts.services.set_role ---------------------------------------------------------

def group_names(user):
    return sorted(user.groups.values_list("name", flat=True))


def test_it_gives_the_admin_group_the_client_permissions_and_the_therapist_group_none(db):
    admin = Group.objects.get(name=Role.ADMIN)
    admin_perms = set(admin.permissions.values_list("codename", flat=True))
    assert {"change_client", "view_client", "change_user", "add_supervisionlink"} <= admin_perms
    assert "delete_client" not in admin_perms
    assert not Group.objects.get(name=Role.THERAPIST).permissions.exists()
    assert not Group.objects.get(name=Role.SUPERVISOR).permissions.exists()


def test_it_makes_an_admin_staff_in_the_admin_group(db):
    user = make_user(Role.THERAPIST)

    set_role(user=user, role=Role.ADMIN)

    user = User.objects.get(pk=user.pk)  # fresh: no cached permissions
    assert user.role == Role.ADMIN
    assert user.is_staff
    assert group_names(user) == ["admin"]
    assert user.has_perm("therapy_sessions.change_client")


def test_it_takes_staff_and_permissions_away_when_an_admin_becomes_a_therapist(db):
    user = make_user(Role.ADMIN)

    set_role(user=user, role=Role.THERAPIST)

    user = User.objects.get(pk=user.pk)
    assert user.role == Role.THERAPIST
    assert not user.is_staff
    assert group_names(user) == ["therapist"]
    assert not user.has_perm("therapy_sessions.change_client")
    assert user.get_all_permissions() == set()


def test_it_keeps_one_role_group_when_moving_between_roles(db):
    user = make_user(Role.THERAPIST)

    for role in (Role.SUPERVISOR, Role.ADMIN, Role.SUPERVISOR):
        set_role(user=user, role=role)

    user.refresh_from_db()
    assert group_names(user) == ["supervisor"]
    assert not user.is_staff


def test_it_leaves_other_groups_alone(db):
    user = make_user(Role.THERAPIST)
    research = Group.objects.create(name="research")
    user.groups.add(research)

    set_role(user=user, role=Role.SUPERVISOR)

    assert group_names(user) == ["research", "supervisor"]


def test_it_refuses_an_unknown_role_and_changes_nothing(db):
    user = make_user(Role.THERAPIST)

    with pytest.raises(ValueError, match="unknown role"):
        set_role(user=user, role="superuser")

    user.refresh_from_db()
    assert user.role == Role.THERAPIST
    assert group_names(user) == ["therapist"]


def test_the_british_formats_hold_without_the_translation_machinery(settings):
    """USE_I18N is off (one language); LANGUAGE_CODE still picks the dates' formats."""
    from datetime import date

    from django.utils import formats

    assert settings.USE_I18N is False
    assert formats.get_format("DATE_INPUT_FORMATS")[0] == "%d/%m/%Y"
    assert formats.date_format(date(2026, 12, 3)) == "3 Dec 2026"
    assert formats.get_format("FIRST_DAY_OF_WEEK") == 1
