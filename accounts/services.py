from datetime import timedelta

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Role, User
from audit.log import record
from audit.models import Action


@transaction.atomic
def set_role(*, user: User, role: str) -> User:
    """Give a person a role: the field the app checks and the group the admin site checks."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    user.role = role
    # Operators (superusers) keep the admin site whatever clinic role they hold.
    user.is_staff = role == Role.ADMIN or user.is_superuser
    user.save(update_fields=["role", "is_staff"])
    user.groups.remove(*Group.objects.filter(name__in=Role.values).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    return user


# --- What an admin does to someone's account: recorded, and announced to the person ---
# An admin who could change a therapist's e-mail, send a reset link there and strip the
# second factor could become that therapist. Each step is therefore in the access log
# under the admin's name and announced to the address the person had before, so a
# take-over cannot be quiet.

PREVIOUS_ADDRESS_DAYS = 90


def end_all_sessions(*, user: User) -> None:
    """Every session of `user` stops working at its next request (get_session_auth_hash)."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])


def end_other_sessions(*, request, user: User) -> None:
    """As end_all_sessions, but the session making the change carries on."""
    end_all_sessions(user=user)
    if request.user.pk == user.pk:
        request.user.session_epoch = user.session_epoch
        update_session_auth_hash(request, user)


def addresses_to_warn(user: User) -> list[str]:
    """The address on file, and the one before it if an admin changed it lately."""
    addresses = [user.email]
    recent = user.email_changed_at and timezone.now() - user.email_changed_at < timedelta(days=PREVIOUS_ADDRESS_DAYS)
    if recent and user.previous_email:
        addresses.append(user.previous_email)
    return sorted({a for a in addresses if a})


def _announce(*, to: list[str], user: User, admin: User, what: str) -> None:
    if not to:
        return
    context = {"user": user, "admin": admin, "what": what, "at": timezone.localtime(), "site_url": settings.SITE_URL}
    send_mail(
        subject=f"rupture-log: {what}",
        message=render_to_string("accounts/email_account_change.txt", context),
        from_email=None, recipient_list=to, fail_silently=True,
    )


def _record(request, what: str, user: User, **detail) -> None:
    record(request, Action.ACCOUNT, what, key=user.get_username()[:64], detail={"user_id": user.pk, **detail})


@transaction.atomic
def record_email_change(*, request, user: User, old_email: str) -> None:
    """After an admin saved a new address for `user`: log it and warn the old address."""
    if old_email == user.email:
        return
    user.previous_email, user.email_changed_at = old_email, timezone.now()
    user.save(update_fields=["previous_email", "email_changed_at"])
    _record(request, "email", user)
    transaction.on_commit(lambda: _announce(
        to=sorted({a for a in (old_email, user.email) if a}), user=user, admin=request.user,
        what="the e-mail address of your account was changed"))


def addresses_on_file() -> dict[int, str]:
    """Everyone's address, to compare after a bulk change (a clinic has hundreds of people)."""
    return dict(User.objects.values_list("pk", "email"))


def record_email_changes(*, request, before: dict[int, str]) -> None:
    """After a caseload import by an admin: each changed address as if changed in the admin site."""
    for user in User.objects.filter(pk__in=before.keys()):
        if user.email != before[user.pk]:
            record_email_change(request=request, user=user, old_email=before[user.pk])


def reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})
    return settings.SITE_URL.rstrip("/") + path


@transaction.atomic
def send_reset_link(*, request, user: User) -> bool:
    """E-mail `user` a link to choose a password; the admin never sets or sees one."""
    if not user.email or not user.is_active:
        return False
    _record(request, "reset-link", user)
    link = reset_link(user)
    warn = [a for a in addresses_to_warn(user) if a != user.email]
    transaction.on_commit(lambda: send_mail(
        subject="rupture-log: choose your password",
        message=render_to_string("accounts/email_reset_link.txt", {"user": user, "admin": request.user, "link": link}),
        from_email=None, recipient_list=[user.email], fail_silently=True,
    ))
    transaction.on_commit(lambda: _announce(
        to=warn, user=user, admin=request.user, what="a password link was sent for your account"))
    return True


@transaction.atomic
def remove_second_factor(*, request, user: User) -> None:
    """For a lost phone: the person sets up a new app at their next sign-in."""
    from accounts import mfa

    mfa.remove_all(user)
    end_all_sessions(user=user)
    _record(request, "second-factor", user)
    transaction.on_commit(lambda: _announce(
        to=addresses_to_warn(user), user=user, admin=request.user,
        what="the second factor of your account was removed"))
