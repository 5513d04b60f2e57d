from django import template

from accounts.models import Role
from supervision.forms import SupervisionNoteForm
from supervision.models import notes_on

register = template.Library()


@register.inclusion_tag("supervision/rupture_notes.html", takes_context=True)
def supervision_notes(context, rupture):
    """The rupture page's "Supervision" section: the notes, and the supervisor's form.

    The rupture page is reached through ruptures.access.get_rupture_for, so whoever sees
    this is the rupture's therapist or their current supervisor.
    """
    user = context["request"].user
    return {
        "rupture": rupture,
        "notes": notes_on(rupture),
        "form": SupervisionNoteForm() if user.role == Role.SUPERVISOR else None,
        "csrf_token": context.get("csrf_token"),
    }

