"""SQL for `audit_log`: append a row, list a page newest first."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memcube.errors import InvalidInput
from memcube.store.cursor import decode_cursor, encode_cursor

COLUMNS = "id, at, tenant, key_id, key_name, actor, request_id, method, route, path, status, outcome, cubes"
SQL_INSERT = (
    "INSERT INTO audit_log (tenant, key_id, key_name, actor, request_id, method, route, path, status, outcome, "
    "cubes) VALUES (%(tenant)s, %(key_id)s, %(key_name)s, %(actor)s, %(request_id)s, %(method)s, %(route)s, "
    "%(path)s, %(status)s, %(outcome)s, %(cubes)s)"
)


def insert(conn: psycopg.Connection, row: dict[str, Any]) -> None:
    conn.execute(SQL_INSERT, {**row, "cubes": Jsonb(row["cubes"])})


def list_entries(conn: psycopg.Connection, *, tenant: str | None, filters: dict[str, Any], limit: int,
                 cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of entries, newest first, and the next page's cursor (None at the end).

    `tenant` None: every tenant; "": the entries of callers that could not be authenticated. `filters` may hold
    key_id, cube_id, route, outcome, request_id, since, until.
    """
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if tenant == "":
        conditions.append(sql.SQL("tenant IS NULL"))
    elif tenant is not None:
        conditions.append(sql.SQL("tenant = %s"))
        params.append(tenant)
    for name in ("key_id", "route", "outcome", "request_id"):
        if filters.get(name) is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(filters[name])
    if filters.get("cube_id") is not None:
        conditions.append(sql.SQL("cubes @> %s"))
        params.append(Jsonb([{"id": str(filters["cube_id"])}]))
    if filters.get("since") is not None:
        conditions.append(sql.SQL("at >= %s"))
        params.append(filters["since"])
    if filters.get("until") is not None:
        conditions.append(sql.SQL("at < %s"))
        params.append(filters["until"])
    if cursor:
        (last_id,) = decode_cursor(cursor, str)
        if not last_id.isdigit():
            raise InvalidInput("cursor is not valid; pass back `next_cursor` unchanged")
        conditions.append(sql.SQL("id < %s"))
        params.append(int(last_id))
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    query = sql.SQL("SELECT {} FROM audit_log WHERE {} ORDER BY id DESC LIMIT %s").format(sql.SQL(COLUMNS), where)
    params.append(limit + 1)
    rows = conn.execute(query, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(str(rows[-1]["id"])) if more else None
