from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import Role, User


@transaction.atomic
def set_role(*, user: User, role: str) -> User:
    """Give a person a role: the field the app checks and the group the admin site checks."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    user.role = role
    user.is_staff = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff"])
    user.groups.remove(*Group.objects.filter(name__in=Role.values).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    return user
