"""Hand-written SQL on the hot paths (claim, submit, token login): one statement instead of
several ORM queries, and no per-request query compilation, which costs more than the statements
themselves there. These helpers turn joined rows back into ordinary model instances, with the
same conversions the ORM applies (so the portable statements also work on SQLite)."""

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], alias: str) -> str:
    """`alias.col, ...` for every concrete field of the model, in field order."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[int, list, Any]]]:
    attnames, converters = [], []
    for index, field in enumerate(model._meta.concrete_fields):
        attnames.append(field.attname)
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    return attnames, converters


def instance(model: type[Model], row: Any, start: int = 0) -> tuple[Model | None, int]:
    """The model instance whose columns (as `columns` lists them) begin at row[start], or None
    when its primary key is NULL (an outer join that found nothing); and the next offset."""
    attnames, converters = _converters(model, connection.vendor)
    end = start + len(attnames)
    values = list(row[start:end])
    if values[0] is None:
        return None, end
    for index, found, col in converters:
        for convert in found:
            values[index] = convert(values[index], col, connection)
    return model.from_db(connection.alias, attnames, values), end


def db_value(model: type[Model], field: str, value: Any) -> Any:
    """A parameter for a hand-written statement, as the ORM would send it (e.g. a UUID)."""
    return model._meta.get_field(field).get_db_prep_value(value, connection)


def fetch_one(sql: str, params: Any) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
