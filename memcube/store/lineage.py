"""SQL of lineage: which cubes a cube was derived from, and which were derived from it.

Two records say so: the `derived_from` list of a version's provenance (with the version it was derived from),
and `derived_from` links (written by fuse and consolidation). Functions never commit.
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

import psycopg

# Every {id, version} any version of these cubes names in its provenance; entries that are not objects are skipped.
SQL_NAMED_IN_VERSIONS = (
    "SELECT DISTINCT v.cube_id, ref->>'id' AS ref_id, ref->>'version' AS ref_version "
    "FROM memcube_versions v CROSS JOIN LATERAL jsonb_array_elements("
    "  CASE WHEN jsonb_typeof(v.provenance->'derived_from') = 'array' THEN v.provenance->'derived_from' "
    "  ELSE '[]'::jsonb END) AS ref "
    "WHERE v.tenant = %s AND v.cube_id = ANY(%s) AND jsonb_typeof(ref) = 'object'"
)
# Current cubes of an agent whose provenance names one of the ids.
SQL_NAMING = (
    "SELECT m.id, ref->>'id' AS ref_id, ref->>'version' AS ref_version "
    "FROM memcubes m CROSS JOIN LATERAL jsonb_array_elements("
    "  CASE WHEN jsonb_typeof(m.provenance->'derived_from') = 'array' THEN m.provenance->'derived_from' "
    "  ELSE '[]'::jsonb END) AS ref "
    "WHERE m.tenant = %s AND m.agent_id = %s AND jsonb_typeof(ref) = 'object' AND ref->>'id' = ANY(%s) "
    "LIMIT %s"
)
SQL_LINKS_FROM = (
    "SELECT source_id, target_id FROM memcube_links WHERE tenant = %s AND type = 'derived_from' "
    "AND source_id = ANY(%s) ORDER BY created_at, id LIMIT %s"
)
SQL_LINKS_TO = (
    "SELECT source_id, target_id FROM memcube_links WHERE tenant = %s AND type = 'derived_from' "
    "AND target_id = ANY(%s) ORDER BY created_at, id LIMIT %s"
)


def named_in_versions(conn: psycopg.Connection, *, tenant: str,
                      cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return (cube_id, ref_id, ref_version) for every derived_from entry in any version of the cubes; ref_id and
    ref_version are the text stored."""
    return conn.execute(SQL_NAMED_IN_VERSIONS, (tenant, list(cube_ids))).fetchall()


def naming(conn: psycopg.Connection, *, tenant: str, agent_id: str, ref_ids: Sequence[UUID],
           limit: int) -> list[dict[str, Any]]:
    """Return (id, ref_id, ref_version) of the agent's cubes whose current provenance names one of `ref_ids`."""
    return conn.execute(SQL_NAMING, (tenant, agent_id, [str(i) for i in ref_ids], limit)).fetchall()


def links_from(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID], limit: int) -> list[dict[str, Any]]:
    """Return (source_id, target_id) of the derived_from links from the cubes."""
    return conn.execute(SQL_LINKS_FROM, (tenant, list(cube_ids), limit)).fetchall()


def links_to(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID], limit: int) -> list[dict[str, Any]]:
    """Return (source_id, target_id) of the derived_from links to the cubes."""
    return conn.execute(SQL_LINKS_TO, (tenant, list(cube_ids), limit)).fetchall()
