"""Supervision notes in a rupture's history (registered with ruptures.history at start-up)."""

from ruptures.history import Entry
from supervision.models import notes_on


def supervision_entries(rupture):
    return [
        Entry(note.created_at, str(note.supervisor), "marked it discussed in supervision", comment=note.comment)
        for note in notes_on(rupture)
    ]
