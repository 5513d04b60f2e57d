"""Long lists folded behind a link: the rows in view, and how many there are in all.

A page that lists a caseload's sessions or ruptures shows the first rows and a link to
the rest (?all=<list>, working without JavaScript; templates/includes/unfold.html). The
count comes with the rows, a window over the whole list in the same query, so the folded
rows are never fetched: a long list costs what a short one does.
"""

from dataclasses import dataclass

from django.db.models import Count, Window


@dataclass
class Fold:
    rows: list
    total: int

    @property
    def more(self):
        return self.total - len(self.rows)

    def __iter__(self):
        return iter(self.rows)


def fold_rows(rows, shown, *, whole=False):
    """The same for a list already fetched whole (the page needs all of it anyway)."""
    return Fold(rows if whole else rows[:shown], len(rows))


def fold(queryset, shown, *, whole=False):
    """The first `shown` rows of `queryset` and its length in one query; all of them
    when `whole` (the list was unfolded)."""
    if whole:
        rows = list(queryset)
        return Fold(rows, len(rows))
    rows = list(queryset.annotate(listed=Window(Count("pk")))[:shown])
    return Fold(rows, rows[0].listed if rows else 0)
