"""Long lists folded behind a link or paged: the rows in view, and how many there are in all.

A page that lists a caseload's sessions or ruptures shows the first rows and a link to
the rest (?all=<list>, working without JavaScript; templates/includes/unfold.html). The
count comes with the rows, a window over the whole list in the same query, so the folded
rows are never fetched: a long list costs what a short one does. Paged lists (`page`)
take their count the same way.
"""

from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

MAX_OFFSET = 2**63 - 1  # OFFSET is a bigint


@dataclass
class Fold:
    rows: list
    total: int

    @property
    def more(self):
        return self.total - len(self.rows)

    def __iter__(self):
        return iter(self.rows)


@dataclass
class Group:
    """One group of a grouped fold: its key (a row's `by`), the rows in view, its length."""
    key: object
    rows: list
    total: int

    @property
    def more(self):
        return self.total - len(self.rows)


@dataclass
class GroupedFold(Fold):
    groups: list[Group] = field(default_factory=list)


def fold_groups(queryset, by, shown, *, whole=False):
    """A list in groups (rows sharing `by`, a field path; the queryset ordered by it
    first), folded within each group: every group's first `shown` rows in the queryset's
    order, each group's length and the whole list's, in one query. A long list of one
    group then hides no other group (a supervisor's escalated flags, by supervisee);
    `whole`: every row of every group."""
    order = queryset.query.order_by
    rows = queryset.annotate(
        in_group=Window(Count("pk"), partition_by=F(by)),
        listed=Window(Count("pk")),
    )
    if not whole:
        # PostgreSQL numbers the rows within each group; the outer query keeps the first
        # (Django puts a filter on a window in a query around it).
        rows = rows.annotate(nth=Window(RowNumber(), partition_by=F(by), order_by=order)).filter(nth__lte=shown)
    rows = list(rows)
    groups = []
    for row in rows:
        key = _resolve(row, by)
        if not groups or groups[-1].key != key:
            groups.append(Group(key, [], row.in_group))
        groups[-1].rows.append(row)
    return GroupedFold(rows, rows[0].listed if rows else 0, groups)


def _resolve(row, path):
    for name in path.split("__"):
        row = getattr(row, name)
    return row


def fold_rows(rows, shown, *, whole=False):
    """The same for a list already fetched whole (the page needs all of it anyway)."""
    return Fold(rows if whole else rows[:shown], len(rows))


def fold(queryset, shown, *, whole=False):
    """The first `shown` rows of `queryset` and its length in one query; all of them
    when `whole` (the list was unfolded)."""
    if whole:
        rows = list(queryset)
        return Fold(rows, len(rows))
    return Fold(*_slice_and_total(queryset, 0, shown))


def _slice_and_total(queryset, start, stop):
    """queryset[start:stop] and the whole list's length, from a window in the same query
    (0 when the slice is empty: the window has no row to say it on)."""
    rows = list(queryset.annotate(listed=Window(Count("pk")))[start:stop])
    return rows, rows[0].listed if rows else 0


def page(queryset, number, per_page):
    """What Paginator(queryset, per_page).get_page(number) gives, in one query instead of
    two: the page's rows with the list's length in a window beside them, where the
    paginator counts first. A number that is not a page of the list (past its end, say,
    after a search narrowed it, or below 1) is answered as get_page answers it."""
    paginator = Paginator(queryset, per_page)
    try:
        wanted = int(number)
    except (TypeError, ValueError):
        wanted = 1
    # Below 1, or so far past any list that its offset would overflow PostgreSQL's
    # bigint: get_page counts first and answers with a real page.
    if not 1 <= wanted <= MAX_OFFSET // per_page:
        return paginator.get_page(number)
    start = (wanted - 1) * per_page
    rows, total = _slice_and_total(queryset, start, start + per_page)
    if not rows and wanted > 1:
        return paginator.get_page(number)
    # The paginator's count is a cached property: seeded here, it is never queried.
    paginator.__dict__["count"] = total
    return Page(rows, wanted, paginator)
