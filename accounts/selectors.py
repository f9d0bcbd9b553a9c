"""Reads.

The two reads every phone login makes are written out as SQL: building the
same statement through the ORM's get() costs more CPU than everything else
the read does (about 0.45 ms a query, measured in process). The table and column
names come from the model, so a rename cannot leave them behind.
"""

from __future__ import annotations

from django.db import connection

from .models import User


def _phone_number_sql(columns: str) -> str:
    meta = User._meta
    quote = connection.ops.quote_name
    number = quote(meta.get_field("phone_number_for_2fa").column)
    return f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {number} = %s"  # noqa: S608 names from the model


def user_get_by_phone_number(number: str) -> User | None:
    """Return the active user whose phone number is `number` (E.164), if any."""
    meta = User._meta
    fields = meta.concrete_fields
    quote = connection.ops.quote_name
    sql = _phone_number_sql(", ".join(quote(field.column) for field in fields))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} AND {quote(meta.get_field('is_active').column)} = %s", [str(number), True]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # The database's values become Python's as a queryset would turn them
    # (SQLite's dates are text, for one).
    values = []
    for field, value in zip(fields, row, strict=True):
        column = field.get_col(meta.db_table)
        for converter in connection.ops.get_db_converters(column) + field.get_db_converters(
            connection
        ):
            value = converter(value, column, connection)
        values.append(value)
    return User.from_db(connection.alias, [field.attname for field in fields], values)


def phone_number_holder(number: str) -> tuple[int, bool] | None:
    """Return (id, is_active) of the user whose phone number is `number` (E.164), if any."""
    meta = User._meta
    quote = connection.ops.quote_name
    columns = f"{quote(meta.pk.column)}, {quote(meta.get_field('is_active').column)}"
    with connection.cursor() as cursor:
        cursor.execute(_phone_number_sql(columns), [str(number)])
        row = cursor.fetchone()
    if row is None:
        return None
    holder_id, active = row
    # SQLite answers 0 or 1.
    return holder_id, bool(active)
