"""Reads.

The reads every phone login makes, and the one every page of a logged-in
person makes (their user, accounts.backends), are written out as SQL:
building the same statement through the ORM's get() costs more CPU than
everything else the read does (about 0.4 ms a query, measured in process).
The table and column names come from the model, so a rename cannot leave
them behind.
"""

from __future__ import annotations

import functools

from django.db import DEFAULT_DB_ALIAS, connections

from .models import User


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    """Return the reads' SQL, once per database vendor (they quote names differently)."""
    meta = User._meta
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(meta.db_table)
    number = quote(meta.get_field("phone_number_for_2fa").column)
    active = quote(meta.get_field("is_active").column)
    columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
    # Names from the model, values as parameters.
    return {
        "user": f"SELECT {columns} FROM {table} WHERE {number} = %s AND {active} = %s",  # noqa: S608
        "user_by_id": f"SELECT {columns} FROM {table} WHERE {quote(meta.pk.column)} = %s",  # noqa: S608
        "holder": f"SELECT {quote(meta.pk.column)}, {active} FROM {table} WHERE {number} = %s",  # noqa: S608
    }


def user_get_by_phone_number(number: str) -> User | None:
    """Return the active user whose phone number is `number` (E.164), if any."""
    return _user_get("user", [str(number), True])


def user_get_by_id(user_id: int) -> User | None:
    """Return the user whose id is `user_id`, if any, active or not."""
    return _user_get("user_by_id", [user_id])


def _user_get(statement: str, params: list) -> User | None:
    # The connection itself, not django.db.connection: each attribute read
    # through that proxy is a thread-local lookup, and the converters below
    # read it dozens of times.
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)[statement], params)
        row = cursor.fetchone()
    if row is None:
        return None
    # The database's values become Python's as a queryset would turn them
    # (SQLite's dates are text, for one).
    meta = User._meta
    fields = meta.concrete_fields
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
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)["holder"], [str(number)])
        row = cursor.fetchone()
    if row is None:
        return None
    holder_id, active = row
    # SQLite answers 0 or 1.
    return holder_id, bool(active)
