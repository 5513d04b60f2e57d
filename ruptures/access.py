"""The one way views reach ruptures: same rule as sessions.access, 404 for the rest."""

from django.shortcuts import get_object_or_404

from ruptures.models import RuptureEvent


def get_rupture_for(user, pk, *, write=False):
    ruptures = (
        RuptureEvent.objects.editable_by(user) if write else RuptureEvent.objects.visible_to(user)
    )
    # With what every rupture page names: the session and its client, who logged and
    # who last changed the rupture (the session's therapist is the client's, and no
    # rupture page names them).
    return get_object_or_404(
        ruptures.select_related("session__client", "created_by", "updated_by"), pk=pk,
    )
