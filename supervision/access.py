"""The one way supervision views reach a supervisee: their current supervisor only.

Admins see the clinic report's aggregates but no caseload client by client, and a
therapist has no supervision pages; for everyone else the page does not exist (404).
"""

import re

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import Role, User, supervisee_ids


def get_supervisee_for(user, username):
    if not user.is_authenticated or user.role != Role.SUPERVISOR:
        raise Http404
    # A name no user can have is a 404 before it reaches the database, which refuses NUL.
    if not re.fullmatch(UnicodeUsernameValidator.regex, username):
        raise Http404
    return get_object_or_404(User.objects.filter(pk__in=supervisee_ids(user)), username=username)
