"""SQL for `memcubes` and `memcube_versions`. Functions never commit: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memcube import request_context as audit
from memcube.errors import InvalidInput, NotFound, StaleVersion
from memcube.store import search_text
from memcube.store.cursor import decode_cursor, encode_cursor

# The columns a cube is read with everywhere (no embedding, no tsv: they are never returned).
CUBE_COLUMNS = (
    "id, tenant, agent_id, user_id, session_id, kind, tier, content, data, tags, metadata, artifact, "
    "occurred_at, valid_from, valid_to, importance, confidence, access_count, last_accessed_at, status, "
    "superseded_by, version, provenance, created_at, updated_at, label"
)
# The columns a version snapshot copies from the current row.
SNAPSHOT_COLUMNS = (
    "tenant, agent_id, user_id, session_id, kind, tier, content, data, tags, metadata, artifact, "
    "occurred_at, valid_from, valid_to, importance, confidence, status, superseded_by, provenance, label"
)
VERSION_COLUMNS = "cube_id AS id, version, " + SNAPSHOT_COLUMNS + ", recorded_at"

# Fields a change may set, with how each is passed to SQL.
MUTABLE_FIELDS = (
    "content", "data", "tags", "metadata", "artifact", "kind", "tier", "status", "occurred_at", "valid_from",
    "valid_to", "importance", "confidence", "superseded_by", "user_id", "session_id", "agent_id",
)
_JSON_FIELDS = {"data", "metadata", "artifact"}

SQL_INSERT_CUBE = (
    "INSERT INTO memcubes (id, tenant, agent_id, user_id, session_id, kind, tier, content, data, tags, metadata, "
    "artifact, occurred_at, valid_from, valid_to, importance, confidence, provenance, embedding, label, "
    "status, search_tsv, search_len) "
    "SELECT %(id)s, %(tenant)s, %(agent_id)s, %(user_id)s, %(session_id)s, %(kind)s, %(tier)s, %(content)s, "
    "%(data)s, %(tags)s, %(metadata)s, %(artifact)s, %(occurred_at)s, %(valid_from)s, %(valid_to)s, "
    "%(importance)s, %(confidence)s, %(provenance)s, %(embedding)s, %(label)s, %(status)s, d.doc, "
    "memcube_search_len(d.doc) "
    # Its search document, complete: its words and those of the turns before it (store/search_text.py).
    "FROM (SELECT " + search_text.DOCUMENT + " AS doc) AS d"
)
SQL_SNAPSHOT = (
    "INSERT INTO memcube_versions (cube_id, version, " + SNAPSHOT_COLUMNS + ") "
    "SELECT id, version, " + SNAPSHOT_COLUMNS + " FROM memcubes WHERE id = ANY(%s) RETURNING cube_id, version"
)
SQL_GET = "SELECT " + CUBE_COLUMNS + " FROM memcubes WHERE tenant = %s AND id = %s"
SQL_GET_MANY = "SELECT " + CUBE_COLUMNS + " FROM memcubes WHERE tenant = %s AND id = ANY(%s)"
SQL_LOCK = "SELECT " + CUBE_COLUMNS + " FROM memcubes WHERE tenant = %s AND id = %s FOR UPDATE"
SQL_LOCK_MANY = (
    "SELECT " + CUBE_COLUMNS + " FROM memcubes WHERE tenant = %s AND id = ANY(%s) ORDER BY id FOR UPDATE"
)
SQL_GET_VERSION = (
    "SELECT " + VERSION_COLUMNS + " FROM memcube_versions WHERE tenant = %s AND cube_id = %s AND version = %s"
)
SQL_GET_AS_OF = (
    "SELECT " + VERSION_COLUMNS + " FROM memcube_versions "
    "WHERE tenant = %s AND cube_id = %s AND recorded_at <= %s ORDER BY version DESC LIMIT 1"
)
SQL_HISTORY = (
    "SELECT " + VERSION_COLUMNS + " FROM memcube_versions WHERE tenant = %s AND cube_id = %s ORDER BY version"
)
# Access counts lock their rows in id order first, as lock_cubes does, so a flush and a multi-cube change
# (or two API processes flushing) never wait on each other in a cycle.
SQL_LOCK_ACCESSED = "SELECT id FROM memcubes WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
SQL_RECORD_ACCESS = (
    "UPDATE memcubes AS m SET access_count = m.access_count + a.n, last_accessed_at = a.at "
    "FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[]) AS a(id, n, at) WHERE m.id = a.id"
)
SQL_SCOPE_SIZE = (
    "SELECT count(*) AS n FROM (SELECT 1 FROM memcubes WHERE tenant = %s AND agent_id = %s LIMIT %s) AS s"
)


def to_vector(values: Sequence[float] | None) -> np.ndarray | None:
    """Return a float32 array pgvector's adapter sends in binary, or None."""
    return None if values is None else np.asarray(values, dtype=np.float32)


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def insert_cubes(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert new cubes with their first version; return them as stored, in the given order."""
    params = []
    for row in rows:
        params.append({
            **row,
            "data": _json(row.get("data")),
            "metadata": Jsonb(row.get("metadata") or {}),
            "artifact": _json(row.get("artifact")),
            "provenance": Jsonb(row["provenance"]),
            "embedding": to_vector(row.get("embedding")),
            "label": row.get("label"),
            "status": row.get("status") or "active",
        })
    ids = [row["id"] for row in rows]
    with conn.cursor() as cur:
        cur.executemany(SQL_INSERT_CUBE, params)
        cur.execute(SQL_SNAPSHOT, (ids,))
        audit.note_versions(cur.fetchall())
    episodes = [row["id"] for row in rows if row["kind"] == "episodic" and row.get("session_id") is not None]
    if episodes:
        search_text.refresh_after_insert(conn, tenant=rows[0]["tenant"], cube_ids=episodes)
    return get_cubes(conn, tenant=rows[0]["tenant"], cube_ids=ids) if rows else []


def get_cubes(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return the cubes that exist in the tenant, in the order of `cube_ids`."""
    rows = conn.execute(SQL_GET_MANY, (tenant, list(cube_ids))).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in cube_ids if i in by_id]


def find_cube(conn: psycopg.Connection, *, tenant: str, cube_id: UUID) -> dict[str, Any] | None:
    """Return the current row of a cube, or None."""
    return conn.execute(SQL_GET, (tenant, cube_id)).fetchone()


def get_cube(conn: psycopg.Connection, *, tenant: str, cube_id: UUID) -> dict[str, Any]:
    """Return the current row of a cube; raises NotFound."""
    row = find_cube(conn, tenant=tenant, cube_id=cube_id)
    if row is None:
        raise NotFound(f"memory {cube_id} not found")
    return row


def lock_cube(conn: psycopg.Connection, *, tenant: str, cube_id: UUID) -> dict[str, Any]:
    """Return the current row locked for update until the transaction ends; raises NotFound."""
    row = conn.execute(SQL_LOCK, (tenant, cube_id)).fetchone()
    if row is None:
        raise NotFound(f"memory {cube_id} not found")
    return row


def lock_cubes(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Lock several cubes in id order (no deadlocks between two such calls); raises NotFound for a missing one."""
    rows = conn.execute(SQL_LOCK_MANY, (tenant, list(cube_ids))).fetchall()
    found = {row["id"] for row in rows}
    missing = [str(i) for i in cube_ids if i not in found]
    if missing:
        raise NotFound(f"memory {missing[0]} not found", details={"missing": missing})
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in cube_ids]


def update_cube(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, changes: dict[str, Any],
                provenance: dict[str, Any], expected_version: int | None = None,
                embedding: Sequence[float] | None = None) -> dict[str, Any]:
    """Apply changes as a new version and snapshot it; raises NotFound, or StaleVersion when
    `expected_version` is not the current one."""
    unknown = set(changes) - set(MUTABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"fields cannot be changed: {', '.join(sorted(unknown))}")
    assignments = [sql.SQL("version = version + 1"), sql.SQL("updated_at = now()"),
                   sql.SQL("provenance = {}").format(sql.Placeholder("provenance"))]
    params: dict[str, Any] = {"provenance": Jsonb(provenance), "tenant": tenant, "id": cube_id}
    for field, value in changes.items():
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(field), sql.Placeholder(field)))
        params[field] = _json(value) if field in _JSON_FIELDS else value
    if embedding is not None:
        assignments.append(sql.SQL("embedding = {}").format(sql.Placeholder("embedding")))
        params["embedding"] = to_vector(embedding)
    where = sql.SQL("tenant = {} AND id = {}").format(sql.Placeholder("tenant"), sql.Placeholder("id"))
    if expected_version is not None:
        where = sql.SQL("{} AND version = {}").format(where, sql.Placeholder("expected"))
        params["expected"] = expected_version
    query = sql.SQL("UPDATE memcubes SET {} WHERE {} RETURNING {}").format(
        sql.SQL(", ").join(assignments), where, sql.SQL(CUBE_COLUMNS))
    moved = search_text.follower_ids(conn, tenant=tenant, cube_ids=[cube_id]) \
        if search_text.POSITION_FIELDS & set(changes) else []
    row = conn.execute(query, params).fetchone()
    if row is None:
        current = get_cube(conn, tenant=tenant, cube_id=cube_id)
        raise StaleVersion(
            f"memory {cube_id} is at version {current['version']}, not {expected_version}",
            details={"current_version": current["version"]})
    audit.note_versions(conn.execute(SQL_SNAPSHOT, ([cube_id],)).fetchall())
    if (search_text.TEXT_FIELDS | search_text.POSITION_FIELDS) & set(changes):
        search_text.refresh_search_text(conn, tenant=tenant, cube_ids=[cube_id], also=moved)
    return row


def get_version(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, version: int) -> dict[str, Any]:
    """Return one version of a cube; raises NotFound."""
    row = conn.execute(SQL_GET_VERSION, (tenant, cube_id, version)).fetchone()
    if row is None:
        get_cube(conn, tenant=tenant, cube_id=cube_id)
        raise NotFound(f"memory {cube_id} has no version {version}")
    return row


def get_version_as_of(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, as_of: datetime) -> dict[str, Any]:
    """Return the version that was current at `as_of` (record time); raises NotFound."""
    row = conn.execute(SQL_GET_AS_OF, (tenant, cube_id, as_of)).fetchone()
    if row is None:
        get_cube(conn, tenant=tenant, cube_id=cube_id)
        raise NotFound(f"memory {cube_id} did not exist at {as_of.isoformat()}")
    return row


def list_versions(conn: psycopg.Connection, *, tenant: str, cube_id: UUID) -> list[dict[str, Any]]:
    """Return every version of a cube, oldest first; raises NotFound."""
    rows = conn.execute(SQL_HISTORY, (tenant, cube_id)).fetchall()
    if not rows:
        raise NotFound(f"memory {cube_id} not found")
    return rows


def list_cubes(conn: psycopg.Connection, *, tenant: str, filters: dict[str, Any], limit: int,
               cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of cubes, newest first, and the cursor of the next page (None at the end).

    `filters` may hold agent_id, user_id, session_id, kind, tier, status, tag (all equalities; None: any), and
    since / until (created_at at or after / before).
    """
    conditions = [sql.SQL("tenant = %s")]
    params: list[Any] = [tenant]
    for field in ("agent_id", "user_id", "session_id", "kind", "tier", "status"):
        value = filters.get(field)
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(field)))
            params.append(value)
    if filters.get("tag") is not None:
        conditions.append(sql.SQL("tags @> %s"))
        params.append([filters["tag"]])
    if filters.get("since") is not None:
        conditions.append(sql.SQL("created_at >= %s"))
        params.append(filters["since"])
    if filters.get("until") is not None:
        conditions.append(sql.SQL("created_at < %s"))
        params.append(filters["until"])
    if cursor:
        created_at, cube_id = decode_cursor(cursor, datetime, UUID)
        conditions.append(sql.SQL("(created_at, id) < (%s, %s)"))
        params.extend([created_at, cube_id])
    query = sql.SQL("SELECT {} FROM memcubes WHERE {} ORDER BY created_at DESC, id DESC LIMIT %s").format(
        sql.SQL(CUBE_COLUMNS), sql.SQL(" AND ").join(conditions))
    params.append(limit + 1)
    rows = conn.execute(query, params).fetchall()
    last = rows[limit - 1] if len(rows) > limit else None
    return rows[:limit], None if last is None else encode_cursor(last["created_at"], last["id"])


def record_access(conn: psycopg.Connection, counts: dict[UUID, tuple[int, datetime]]) -> int:
    """Add access counts and last-access times to cubes; return how many rows changed."""
    if not counts:
        return 0
    ids = sorted(counts)
    conn.execute(SQL_LOCK_ACCESSED, (ids,))
    cur = conn.execute(SQL_RECORD_ACCESS, (ids, [counts[i][0] for i in ids], [counts[i][1] for i in ids]))
    return cur.rowcount


def scope_size(conn: psycopg.Connection, *, tenant: str, agent_id: str, cap: int) -> int:
    """Return the number of cubes of an agent, counting no further than `cap`."""
    return conn.execute(SQL_SCOPE_SIZE, (tenant, agent_id, cap)).fetchone()["n"]
