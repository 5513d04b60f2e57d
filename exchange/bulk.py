"""Set-at-a-time reads and writes for the importer: a query per batch, never per row."""

from itertools import islice

from django.db import connection
from django.utils import timezone

# Rows per statement. An UPDATE ... FROM (VALUES ...) of this many rows stays well under
# PostgreSQL's 65,535 bind parameters for the widest table written (ruptures, 15 columns).
BATCH = 2000


def batched(iterable, size=BATCH):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def rows_by_key(queryset, field, keys, *columns):
    """`columns` of the rows whose `field` is one of `keys`, as a dict keyed by that field."""
    found = {}
    for chunk in batched(sorted(keys)):
        for row in queryset.filter(**{f"{field}__in": chunk}).values_list(field, *columns):
            found[row[0]] = row[1:]
    return found


def update_rows(model, fields, rows):
    """UPDATE model SET fields FROM a VALUES list, joined on the primary key.

    `rows` are tuples `(pk, value of each field...)`. Django's bulk_update writes one
    CASE WHEN per field whose cost grows with the square of the batch; a join does not.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    columns = [model._meta.get_field(name) for name in fields]
    types = [pk.db_type(connection)] + [c.db_type(connection) for c in columns]
    names = [pk.column] + [c.column for c in columns]
    quoted = [connection.ops.quote_name(n) for n in names]
    assignments = ", ".join(f"{q} = v.{q}" for q in quoted[1:])
    row_sql = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
    written = 0
    with connection.cursor() as cursor:
        for chunk in batched(rows):
            params = []
            for row in chunk:
                params.append(row[0])
                params.extend(
                    column.get_db_prep_save(value, connection)
                    for column, value in zip(columns, row[1:], strict=True)
                )
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} "
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v({', '.join(quoted)}) "
                f"WHERE t.{quoted[0]} = v.{quoted[0]}",
                params,
            )
            written += cursor.rowcount
    return written


def copy_rows(model, fields, rows):
    """COPY rows of `model` in: the fastest way PostgreSQL takes many rows.

    `rows` are tuples of values for `fields` (attribute names, e.g. "session_id"). The
    model's other columns get what Django would give them: their default, or now for
    auto_now and auto_now_add, so COPY stores the same row a save() would.
    """
    meta = model._meta
    given = [
        meta.get_field(name.removesuffix("_id")) if name.endswith("_id") else meta.get_field(name)
        for name in fields
    ]
    now = timezone.now()
    rest = [f for f in meta.concrete_fields if f not in given and not f.primary_key]
    # One default is computed for all rows, so a unique column must be given.
    assert not any(f.unique for f in rest), f"copy_rows: give {model.__name__}'s unique columns"
    filler = tuple(
        now
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        else f.get_default()
        for f in rest
    )
    columns = ", ".join(connection.ops.quote_name(f.column) for f in [*given, *rest])
    table = connection.ops.quote_name(meta.db_table)
    count = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, *filler))
                count += 1
    return count


def ids_by_key(model, field, keys):
    """{key: id} for the rows whose `field` is one of `keys`, in one query per large batch."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    found = {}
    with connection.cursor() as cursor:
        for chunk in batched(keys, 50_000):
            cursor.execute(f"SELECT {column}, id FROM {table} WHERE {column} = ANY(%s)", [chunk])
            found.update(cursor.fetchall())
    return found
