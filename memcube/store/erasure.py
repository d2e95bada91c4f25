"""SQL of erasure: what was derived from a cube, and removing a cube's content from every place it was kept.

Functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from memcube import request_context as audit
from memcube.store.cubes import SQL_SNAPSHOT

# Provenance keys an erased version keeps: who made it, how, and from which cubes (ids and versions only).
# Free text (`reason`, `source_refs`, and anything an import brought) goes; an erasure's own tombstone keeps
# its reason (it names the erasure, not the content).
KEPT_PROVENANCE = ["source", "actor", "derived_from", "job_id", "model", "prompt_version", "erasure"]

# Cubes whose derived_from links point at the given ones (fuse and consolidation write one per source).
SQL_LINKED_CHILDREN = (
    "SELECT DISTINCT source_id AS id FROM memcube_links "
    "WHERE tenant = %(tenant)s AND type = 'derived_from' AND target_id = ANY(%(ids)s)"
)
# Cubes of the same agents that any of their versions says were derived from the given ones (a later PATCH
# writes a provenance without `derived_from`, so the current row alone is not enough).
SQL_NAMED_CHILDREN = (
    "SELECT DISTINCT v.cube_id AS id FROM memcubes m JOIN memcube_versions v ON v.cube_id = m.id "
    "WHERE m.tenant = %(tenant)s AND m.agent_id = ANY(%(agents)s) "
    "AND jsonb_typeof(v.provenance->'derived_from') = 'array' "
    "AND EXISTS (SELECT 1 FROM jsonb_array_elements(v.provenance->'derived_from') AS ref "
    "            WHERE jsonb_typeof(ref) = 'object' AND ref->>'id' = ANY(%(texts)s))"
)
_SCRUBBED_PROVENANCE = (
    "(SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN e.key = 'derived_from' AND jsonb_typeof(e.value) = 'array' "
    "   THEN (SELECT coalesce(jsonb_agg("
    "           jsonb_strip_nulls(jsonb_build_object('id', r->'id', 'version', r->'version'))), '[]'::jsonb) "
    "         FROM jsonb_array_elements(e.value) AS r WHERE jsonb_typeof(r) = 'object') "
    "   ELSE e.value END), '{}'::jsonb) "
    " FROM jsonb_each({p}) AS e "
    " WHERE e.key = ANY(%(kept)s) OR (e.key = 'reason' AND {p} ? 'erasure'))"
)
SQL_SCRUB_VERSIONS = (
    "UPDATE memcube_versions v SET content = '', data = NULL, tags = '{}', metadata = '{}', artifact = NULL, "
    "provenance = " + _SCRUBBED_PROVENANCE.replace("{p}", "v.provenance") + " "
    "WHERE v.tenant = %(tenant)s AND v.cube_id = ANY(%(ids)s)"
)
# Cubes already erased keep their tombstone (no new version); the rest get one.
SQL_TOMBSTONE = (
    "UPDATE memcubes SET content = '', data = NULL, tags = '{}', metadata = '{}', artifact = NULL, embedding = NULL, "
    "status = 'forgotten', version = version + 1, updated_at = now(), "
    "provenance = CASE WHEN id = %(root)s THEN %(root_provenance)s ELSE %(provenance)s END "
    "WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) "
    "AND NOT (status = 'forgotten' AND content = '' AND data IS NULL AND tags = '{}' AND metadata = '{}' "
    "         AND artifact IS NULL AND embedding IS NULL) RETURNING id"
)
SQL_SCRUB_CURRENT = (
    "UPDATE memcubes SET provenance = " + _SCRUBBED_PROVENANCE.replace("{p}", "provenance") + " "
    "WHERE tenant = %(tenant)s AND id = ANY(%(ids)s)"
)
SQL_SCRUB_LINKS = (
    "UPDATE memcube_links SET metadata = '{}' WHERE tenant = %(tenant)s "
    "AND (source_id = ANY(%(ids)s) OR target_id = ANY(%(ids)s)) AND metadata <> '{}'"
)
# The session windows that may hold the erased messages: the session's owner names the Redis key.
SQL_TURNS = (
    "SELECT s.agent_id, sm.session_id, sm.turn FROM session_messages sm "
    "JOIN sessions s ON s.tenant = sm.tenant AND s.session_id = sm.session_id "
    "WHERE sm.tenant = %(tenant)s AND sm.cube_id = ANY(%(ids)s) ORDER BY s.agent_id, sm.session_id, sm.turn"
)

SQL_DOCUMENTS = "SELECT id, search_tsv::text AS doc FROM memcubes WHERE tenant = %(tenant)s AND id = ANY(%(ids)s)"


def derived_children(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID],
                     agent_ids: Sequence[str]) -> set[UUID]:
    """Return the cubes derived from the given ones: by a derived_from link (any agent of the tenant), or named in
    the derived_from of any version of a cube of `agent_ids`."""
    params = {"tenant": tenant, "ids": list(cube_ids), "texts": [str(i) for i in cube_ids],
              "agents": list(agent_ids)}
    found = {row["id"] for row in conn.execute(SQL_LINKED_CHILDREN, params).fetchall()}
    found |= {row["id"] for row in conn.execute(SQL_NAMED_CHILDREN, params).fetchall()}
    return found


def erase_cubes(conn: psycopg.Connection, *, tenant: str, root: UUID, cube_ids: Sequence[UUID],
                root_provenance: dict[str, Any], provenance: dict[str, Any]) -> list[UUID]:
    """Remove the content, payload, tags, metadata, vector and provenance text of locked cubes from every version,
    and write a tombstone version (status forgotten) for each not erased before; return those tombstoned."""
    params = {"tenant": tenant, "ids": list(cube_ids), "root": root, "kept": KEPT_PROVENANCE,
              "root_provenance": Jsonb(root_provenance), "provenance": Jsonb(provenance)}
    conn.execute(SQL_SCRUB_VERSIONS, params)
    conn.execute(SQL_SCRUB_CURRENT, params)
    tombstoned = [row["id"] for row in conn.execute(SQL_TOMBSTONE, params).fetchall()]
    if tombstoned:
        audit.note_versions(conn.execute(SQL_SNAPSHOT, (tombstoned,)).fetchall())
    conn.execute(SQL_SCRUB_LINKS, params)
    return tombstoned


def session_turns(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return (agent_id, session_id, turn) of the session messages the cubes hold."""
    return conn.execute(SQL_TURNS, {"tenant": tenant, "ids": list(cube_ids)}).fetchall()


def documents(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Return the search documents of cubes, as text."""
    rows = conn.execute(SQL_DOCUMENTS, {"tenant": tenant, "ids": list(cube_ids)}).fetchall()
    return {row["id"]: row["doc"] for row in rows}
