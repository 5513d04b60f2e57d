"""Query helpers on Django alone.

`column = ANY(%s)`: a filter on a list of keys sent as one array parameter.

`field__in=[...]` spells one parameter per key, which client-side binding quotes one by
one in Python: for a whole clinic's thousands of clients that costs more than the query.
One array is bound once, and PostgreSQL reads it as an `IN` list all the same.

    Flag.objects.filter(AnyOf(F("session__client"), client_ids))
"""

from django.db.models import Lookup, Subquery, Value
from django.db.models.lookups import IsNull


class AnyOf(Lookup):
    lookup_name = "any_of"
    # The right-hand side is a list, bound as it is (psycopg sends it as an array).
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def finds_none(queryset):
    """Whether `queryset` (correlated to the outer row through OuterRef) finds no row,
    asked row by row through an index: the condition `~Exists(queryset)` means.

    Not NOT EXISTS: inside an aggregate's FILTER, or beside other conditions, PostgreSQL
    may plan it as a hashed subplan that reads the whole table up front, which costs as
    much as the clinic is large rather than as many rows as are asked about (the
    dashboard's check figures did, on the large demo clinic). A scalar subquery with
    LIMIT 1 has no hashed form.
    """
    return IsNull(Subquery(queryset.order_by().values(found=Value(True))[:1]), True)
