"""The one way views reach clients and sessions.

Read access: the client's therapist and that therapist's current supervisor. Write
access: the therapist only. Everyone else gets a 404, never a 403, so that a URL does
not confirm that a record exists.
"""

from django.shortcuts import get_object_or_404

from audit.deletion import restorable
from sessions.models import Client, TherapySession


def get_client_for(user, code, *, write=False):
    clients = Client.objects.editable_by(user) if write else Client.objects.visible_to(user)
    return get_object_or_404(clients.select_related("therapist"), code=code)


def get_session_for(user, pk, *, write=False):
    sessions = (
        TherapySession.objects.editable_by(user) if write else TherapySession.objects.visible_to(user)
    )
    return get_object_or_404(sessions.select_related("client", "therapist"), pk=pk)


def deletions_for(user):
    """The deletions `user` may undo: those of clients whose records they may edit."""
    return restorable().filter(client__in=Client.all_objects.editable_by(user))


def get_deletion_for(user, pk):
    return get_object_or_404(deletions_for(user).select_related("by"), pk=pk)


def get_client_for_audit(user, code):
    """A client whose access log `user` may review: their readers, and any clinic admin.

    Admins cannot open the record itself, but who opened it is theirs to oversee.
    """
    if user.is_authenticated and user.is_clinic_admin:
        return get_object_or_404(Client.objects.all(), code=code)
    return get_client_for(user, code)
