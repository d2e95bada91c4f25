"""SQL of export and import: a tenant's cubes with their versions, links and sessions, read in a stable order
and written back with their ids. Functions never commit: the caller owns the transaction."""

from __future__ import annotations

from typing import Any, Iterator, Sequence
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memcube.store.cubes import CUBE_COLUMNS, SNAPSHOT_COLUMNS, to_vector

# `agent` narrows every read to one agent; NULL reads the whole tenant.
_IN_SCOPE = "m.tenant = %(tenant)s AND (%(agent)s::text IS NULL OR m.agent_id = %(agent)s)"
# Cubes in insertion order (seq), so that an import, which inserts in file order, keeps the order in which
# episodes of one instant follow each other. An episode is `consolidated` when its scope's mark has passed it.
SQL_EXPORT_CUBES = (
    "SELECT " + ", ".join("m." + c.strip() for c in CUBE_COLUMNS.split(",")) + ", m.embedding, "
    "CASE WHEN m.kind = 'episodic' THEN coalesce(s.mark_xact IS NOT NULL "
    "  AND (m.xact_id, m.id) <= (s.mark_xact, s.mark_id), false) END AS consolidated, "
    "t.created_at AS trajectory_at, t.distilled_at AS trajectory_distilled_at "
    "FROM memcubes m LEFT JOIN consolidation_scopes s ON s.tenant = m.tenant AND s.agent_id = m.agent_id "
    "AND s.user_id IS NOT DISTINCT FROM m.user_id LEFT JOIN trajectories t ON t.cube_id = m.id "
    "WHERE " + _IN_SCOPE + " ORDER BY m.seq"
)
SQL_EXPORT_VERSIONS = (
    "SELECT cube_id, version, " + SNAPSHOT_COLUMNS + ", recorded_at FROM memcube_versions "
    "WHERE tenant = %s AND cube_id = ANY(%s) ORDER BY cube_id, version"
)
# Links whose two ends are both exported.
SQL_EXPORT_LINKS = (
    "SELECT l.id, l.source_id, l.target_id, l.type, l.metadata, l.provenance, l.created_at FROM memcube_links l "
    "JOIN memcubes m ON m.id = l.source_id JOIN memcubes t ON t.id = l.target_id "
    "WHERE l.tenant = %(tenant)s AND " + _IN_SCOPE + " AND (%(agent)s::text IS NULL OR t.agent_id = %(agent)s) "
    "ORDER BY l.created_at, l.id"
)
SQL_EXPORT_SESSIONS = (
    "SELECT m.session_id, m.agent_id, m.user_id, m.next_turn, m.scratchpad, m.created_at, m.last_message_at, "
    "coalesce((SELECT jsonb_agg(jsonb_build_object('turn', sm.turn, 'role', sm.role, 'name', sm.name, "
    "  'cube_id', sm.cube_id) ORDER BY sm.turn) FROM session_messages sm "
    "  WHERE sm.tenant = m.tenant AND sm.session_id = m.session_id), '[]'::jsonb) AS turns "
    "FROM sessions m WHERE " + _IN_SCOPE + " ORDER BY m.created_at, m.session_id"
)
SQL_EMBEDDER = "SELECT model, dim FROM embedding_space"
SQL_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"

SQL_FIND_CUBES = "SELECT id, tenant, version FROM memcubes WHERE id = ANY(%s)"
SQL_FIND_SESSIONS = (
    "SELECT session_id, agent_id, user_id FROM sessions WHERE tenant = %s AND session_id = ANY(%s)"
)
SQL_FIND_TURNS = (
    "SELECT session_id, turn, cube_id FROM session_messages WHERE tenant = %s AND session_id = ANY(%s)"
)
IMPORT_COLUMNS = (
    "id", "tenant", "agent_id", "user_id", "session_id", "kind", "tier", "label", "content", "data", "tags",
    "metadata", "artifact", "occurred_at", "valid_from", "valid_to", "importance", "confidence", "access_count",
    "last_accessed_at", "status", "superseded_by", "version", "provenance", "created_at", "updated_at",
    "embedding",
)
SQL_IMPORT_CUBE = sql.SQL(
    "INSERT INTO memcubes ({columns}, search_tsv, search_len) VALUES ({values}, "
    # The cube's own words; store/search_text.py adds the turns before it once every cube is in.
    "setweight(to_tsvector('english', %(content)s), 'A'), "
    "memcube_search_len(setweight(to_tsvector('english', %(content)s), 'A')))"
).format(columns=sql.SQL(", ").join(map(sql.Identifier, IMPORT_COLUMNS)),
         values=sql.SQL(", ").join(map(sql.Placeholder, IMPORT_COLUMNS)))
VERSION_IMPORT_COLUMNS = (
    "cube_id", "version", "tenant", "agent_id", "user_id", "session_id", "kind", "tier", "label", "content",
    "data", "tags", "metadata", "artifact", "occurred_at", "valid_from", "valid_to", "importance", "confidence",
    "status", "superseded_by", "provenance", "recorded_at",
)
SQL_IMPORT_VERSION = sql.SQL("INSERT INTO memcube_versions ({columns}) VALUES ({values})").format(
    columns=sql.SQL(", ").join(map(sql.Identifier, VERSION_IMPORT_COLUMNS)),
    values=sql.SQL(", ").join(map(sql.Placeholder, VERSION_IMPORT_COLUMNS)))
# Episodes consolidation had taken in where they came from: given a transaction id below every snapshot, so
# that a mark at (1, the largest of their ids) covers them and nothing written here or later.
SQL_AS_CONSOLIDATED = "UPDATE memcubes SET xact_id = '1'::xid8 WHERE id = ANY(%s)"
SQL_ADVANCE_MARK = (
    "INSERT INTO consolidation_scopes AS s (tenant, agent_id, user_id, mark_xact, mark_id) "
    "VALUES (%s, %s, %s, '1'::xid8, %s) ON CONFLICT ON CONSTRAINT consolidation_scopes_scope DO UPDATE "
    "SET mark_xact = EXCLUDED.mark_xact, mark_id = EXCLUDED.mark_id "
    "WHERE s.mark_xact IS NULL OR (s.mark_xact, s.mark_id) < (EXCLUDED.mark_xact, EXCLUDED.mark_id)"
)
SQL_IMPORT_TRAJECTORY = (
    "INSERT INTO trajectories (cube_id, tenant, agent_id, user_id, created_at, distilled_at) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
SQL_IMPORT_LINK = (
    "INSERT INTO memcube_links (id, tenant, source_id, target_id, type, metadata, provenance, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)
SQL_IMPORT_SESSION = (
    "INSERT INTO sessions (tenant, session_id, agent_id, user_id, next_turn, scratchpad, created_at, "
    "last_message_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, session_id) DO NOTHING "
    "RETURNING session_id"
)
SQL_RAISE_NEXT_TURN = (
    "UPDATE sessions SET next_turn = greatest(next_turn, %s) WHERE tenant = %s AND session_id = %s "
    "AND next_turn < %s"
)
SQL_IMPORT_TURN = (
    "INSERT INTO session_messages (tenant, session_id, turn, role, name, cube_id) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING RETURNING turn"
)


def begin_snapshot(conn: psycopg.Connection) -> None:
    """Make the connection's transaction (its first statement) read one snapshot, read-only."""
    conn.execute(SQL_SNAPSHOT)


def find_embedder(conn: psycopg.Connection) -> dict[str, Any] | None:
    """Return the recorded embedder {model, dim}, or None."""
    return conn.execute(SQL_EMBEDDER).fetchone()


def iter_cubes(conn: psycopg.Connection, *, tenant: str, agent_id: str | None,
               batch: int = 500) -> Iterator[list[dict[str, Any]]]:
    """Yield the cubes of the tenant (or agent) in insertion order, in batches, with `versions` (oldest
    first), `embedding` and `consolidated` added. Needs a transaction (a server-side cursor)."""
    with conn.cursor(name="memcube_export") as cur:
        cur.execute(SQL_EXPORT_CUBES, {"tenant": tenant, "agent": agent_id})
        while rows := cur.fetchmany(batch):
            versions: dict[UUID, list[dict[str, Any]]] = {}
            for version in conn.execute(SQL_EXPORT_VERSIONS, (tenant, [r["id"] for r in rows])).fetchall():
                versions.setdefault(version.pop("cube_id"), []).append(version)
            yield [{**row, "versions": versions.get(row["id"], [])} for row in rows]


def list_links(conn: psycopg.Connection, *, tenant: str, agent_id: str | None) -> Iterator[dict[str, Any]]:
    """Yield the links between exported cubes, oldest first."""
    with conn.cursor(name="memcube_export_links") as cur:
        cur.execute(SQL_EXPORT_LINKS, {"tenant": tenant, "agent": agent_id})
        yield from cur


def list_sessions(conn: psycopg.Connection, *, tenant: str, agent_id: str | None) -> Iterator[dict[str, Any]]:
    """Yield the sessions with their turns (turn, role, name, cube_id), oldest first."""
    with conn.cursor(name="memcube_export_sessions") as cur:
        cur.execute(SQL_EXPORT_SESSIONS, {"tenant": tenant, "agent": agent_id})
        yield from cur


def find_cubes(conn: psycopg.Connection, cube_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    """Return {id: {tenant, version}} of the ids that exist in any tenant."""
    return {row["id"]: row for row in conn.execute(SQL_FIND_CUBES, (list(cube_ids),)).fetchall()}


def find_sessions(conn: psycopg.Connection, *, tenant: str, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return {session_id: {agent_id, user_id}} of the sessions that exist in the tenant."""
    rows = conn.execute(SQL_FIND_SESSIONS, (tenant, list(session_ids))).fetchall()
    return {row["session_id"]: row for row in rows}


def find_turns(conn: psycopg.Connection, *, tenant: str, session_ids: Sequence[str]) -> dict[tuple[str, int], UUID]:
    """Return {(session_id, turn): cube_id} of the sessions' recorded turns."""
    rows = conn.execute(SQL_FIND_TURNS, (tenant, list(session_ids))).fetchall()
    return {(row["session_id"], row["turn"]): row["cube_id"] for row in rows}


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def insert_cubes(conn: psycopg.Connection, *, tenant: str, cubes: Sequence[dict[str, Any]]) -> None:
    """Insert cubes as they were, with their ids and every version (each cube holds `versions`)."""
    rows, versions = [], []
    for cube in cubes:
        rows.append({**{c: cube.get(c) for c in IMPORT_COLUMNS}, "tenant": tenant, "data": _jsonb(cube["data"]),
                     "metadata": Jsonb(cube["metadata"]), "artifact": _jsonb(cube["artifact"]),
                     "provenance": Jsonb(cube["provenance"]), "embedding": to_vector(cube.get("embedding"))})
        for version in cube["versions"]:
            versions.append({**{c: version.get(c) for c in VERSION_IMPORT_COLUMNS}, "cube_id": cube["id"],
                             "tenant": tenant, "data": _jsonb(version["data"]), "metadata": Jsonb(version["metadata"]),
                             "artifact": _jsonb(version["artifact"]), "provenance": Jsonb(version["provenance"])})
    with conn.cursor() as cur:
        cur.executemany(SQL_IMPORT_CUBE, rows)
        cur.executemany(SQL_IMPORT_VERSION, versions)


def mark_consolidated(conn: psycopg.Connection, *, tenant: str, scope: tuple[str, str | None],
                      episode_ids: Sequence[UUID]) -> None:
    """Record episodes of a scope as taken in by consolidation (they are not consolidated again)."""
    conn.execute(SQL_AS_CONSOLIDATED, (list(episode_ids),))
    conn.execute(SQL_ADVANCE_MARK, (tenant, scope[0], scope[1], max(episode_ids)))


def insert_trajectory(conn: psycopg.Connection, *, tenant: str, cube: dict[str, Any], created_at: Any,
                      distilled_at: Any) -> None:
    """List an imported cube as a trajectory, distilled or not."""
    conn.execute(SQL_IMPORT_TRAJECTORY, (cube["id"], tenant, cube["agent_id"], cube["user_id"], created_at,
                                         distilled_at))


def insert_link(conn: psycopg.Connection, *, tenant: str, link: dict[str, Any]) -> bool:
    """Insert a link with its id; return False when it (or one of the same pair and type) was there."""
    row = conn.execute(SQL_IMPORT_LINK, (link["id"], tenant, link["source_id"], link["target_id"], link["type"],
                                         Jsonb(link["metadata"]), Jsonb(link["provenance"]),
                                         link["created_at"])).fetchone()
    return row is not None


def insert_session(conn: psycopg.Connection, *, tenant: str, session: dict[str, Any]) -> bool:
    """Insert a session; return False when it was there (then its next turn is raised to the record's)."""
    row = conn.execute(SQL_IMPORT_SESSION, (tenant, session["session_id"], session["agent_id"], session["user_id"],
                                            session["next_turn"], session["scratchpad"], session["created_at"],
                                            session["last_message_at"])).fetchone()
    if row is None:
        conn.execute(SQL_RAISE_NEXT_TURN, (session["next_turn"], tenant, session["session_id"], session["next_turn"]))
    return row is not None


def insert_turn(conn: psycopg.Connection, *, tenant: str, session_id: str, turn: dict[str, Any]) -> bool:
    """Record one turn of a session; return False when it was there."""
    row = conn.execute(SQL_IMPORT_TURN, (tenant, session_id, turn["turn"], turn["role"], turn["name"],
                                         turn["cube_id"])).fetchone()
    return row is not None
