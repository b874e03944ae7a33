"""Hand-written SQL on the hot paths (claim, submit, token login): one statement instead of
several ORM queries, and no per-request query compilation, which costs more than the statements
themselves there. These helpers turn joined rows back into ordinary model instances, with the
same conversions the ORM applies (so the portable statements also work on SQLite)."""

import hashlib
import re
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
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
        execute(cursor, sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Any) -> list[Any]:
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s")


@cache
def _prepared(sql: str) -> tuple[str, str, tuple[str | int, ...]]:
    """(statement name, PREPARE text, the parameter keys in $1..$n order) for a statement
    written with %(name)s or %s placeholders."""
    if "%%" in sql:
        raise ValueError("Prepared statements take no literal %; pass it as a parameter.")
    keys: list[str | int] = []
    positional = 0

    def number(match: re.Match) -> str:
        nonlocal positional
        key: str | int = match.group(1) if match.group(1) else positional
        if match.group(1) is None:
            positional += 1
        if key not in keys:
            keys.append(key)
        return f"${keys.index(key) + 1}"

    body = _PLACEHOLDER.sub(number, sql)
    name = "labelapp_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:16]
    return name, f"PREPARE {name} AS {body}", tuple(keys)


def execute(cursor: Any, sql: str, params: Any) -> None:
    """Run a hand-written statement. On PostgreSQL it is prepared on the server once per
    connection and executed by name afterwards: these statements join several tables, and
    planning them costs several times what running them does."""
    if connection.vendor != "postgresql" or not settings.LABELAPP_DB_PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    name, prepare, keys = _prepared(sql)
    raw = connection.connection
    known = getattr(connection, "_labelapp_prepared", None)
    if known is None or known[0] is not raw:
        known = connection._labelapp_prepared = (raw, set())
    if known[1] is None:  # out of step with the server (see below): ask it
        cursor.execute("SELECT name FROM pg_prepared_statements")
        known = connection._labelapp_prepared = (raw, {row[0] for row in cursor.fetchall()})
    values = [params[key] for key in keys]
    arguments = f"({', '.join(['%s'] * len(values))})" if values else ""
    try:
        if name not in known[1]:
            cursor.execute(prepare)  # prepared statements outlive transactions, rolled back or not
            known[1].add(name)
        cursor.execute(f"EXECUTE {name}{arguments}", values)
    except DatabaseError as exc:
        # The server forgot them (DISCARD ALL, DEALLOCATE) or has one the registry lacks: this
        # call fails, the next one reads the server's list first.
        if _pgcode(exc) in ("26000", "42P05"):
            connection._labelapp_prepared = (raw, None)
        raise


def _pgcode(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "pgcode", None)
