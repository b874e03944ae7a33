"""Building blocks of the PostgreSQL hot path's statements: column lists and INSERTs made from
the models, compiled querysets with named parameters, and rows turned back into instances with
the ORM's own converters."""

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], alias: str) -> str:
    """`alias.col, ...` for every concrete field of the model, in field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model]) -> tuple[list[str], list[tuple[int, list, Any]]]:
    attnames, converters = [], []
    for index, field in enumerate(model._meta.concrete_fields):
        attnames.append(field.attname)
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    return attnames, converters


def instance(model: type[Model], row: Any, start: int = 0) -> tuple[Any, int]:
    """The instance whose columns (as `_columns` lists them) begin at row[start], or None when
    its primary key is NULL (an outer join that found nothing); and the next offset. The ORM's
    own converters apply, as they would to a queryset's rows."""
    attnames, converters = _converters(model)
    end = start + len(attnames)
    values = list(row[start:end])
    if values[0] is None:
        return None, end
    for index, found, col in converters:
        for convert in found:
            values[index] = convert(values[index], col, connection)
    return model.from_db(connection.alias, attnames, values), end


def fetch_one(sql: str, params: Any) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def insert_values(model: type[Model], values: dict[str, str]) -> tuple[str, str]:
    """(`"col", ...`, `expr, ...`) for an INSERT of every concrete field but the primary key:
    `values` names the SQL expression of some attnames; every other field takes the named
    parameter %(attname)s, cast to its column type."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(f'"{f.column}"' for f in fields)
    exprs = ", ".join(
        values.get(f.attname, f"%({f.attname})s::{f.db_type(connection)}") for f in fields
    )
    return names, exprs


def params_of(obj: Model, *, add: bool = True) -> dict[str, Any]:
    """Every concrete field of `obj` as a statement parameter, as the ORM would save it."""
    return {
        f.attname: f.get_db_prep_save(f.pre_save(obj, add), connection)
        for f in obj._meta.concrete_fields
        if not f.primary_key
    }


def sql_named(compiled: tuple[str, tuple[Any, ...]], names: dict[Any, str]) -> tuple[str, dict]:
    """A compiled queryset's SQL with its `%s` placeholders named: a parameter equal to a key of
    `names` becomes that name; every other one a constant parameter c0, c1, ..."""
    sql, params = compiled
    pieces = sql.split("%s")
    out, constants = [pieces[0]], dict[str, Any]()
    for param, piece in zip(params, pieces[1:], strict=True):
        if param in names:
            out.append(f"%({names[param]})s")
        else:
            key = f"c{len(constants)}"
            constants[key] = param
            out.append(f"%({key})s")
        out.append(piece)
    return "".join(out), constants
