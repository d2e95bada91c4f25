"""SQL that keeps each cube's search document (`search_tsv`, `search_len`) in step with its neighbours.

A cube's search document is its own words with weight A. An episode of a session (kind `episodic` with a
`session_id`) also carries the words of the active episodes next to it in the session, in time order, with
weight B, and of those two away with weight C (migrations/0006_search_text.sql): a question and its answer
are usually two turns, and each is then found by the words of both. The store calls `refresh_search_text`
after every write that can change a document: a new cube, a change of content or status, a move to another
session or time, an erase. Functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

from typing import Sequence
from uuid import UUID

import psycopg

# Changes after which a cube's document, or its neighbours', must be written again.
TEXT_FIELDS = frozenset({"content", "status", "kind"})
# Changes that move an episode to another place: its former neighbours lose its words.
POSITION_FIELDS = frozenset({"session_id", "user_id", "agent_id", "occurred_at", "kind"})

# The episodes of the same session next to a cube `c`, active ones only, nearest first (`before` looks back in
# time order, `after` forward), with the position they are sorted by. Walks memcubes_session_order.
_NEIGHBOURS = (
    "SELECT m.id, m.tsv, coalesce(m.occurred_at, m.created_at) AS at, m.seq FROM memcubes m "
    "WHERE m.tenant = c.tenant AND m.agent_id = c.agent_id AND m.session_id = c.session_id "
    "AND m.user_id IS NOT DISTINCT FROM c.user_id AND m.kind = 'episodic' AND m.status = 'active' AND m.id <> c.id "
    "AND (coalesce(m.occurred_at, m.created_at), m.seq) CMP (coalesce(c.occurred_at, c.created_at), c.seq) "
    "ORDER BY coalesce(m.occurred_at, m.created_at) DIR, m.seq DIR LIMIT 2"
)
_BEFORE = _NEIGHBOURS.replace("CMP", "<").replace("DIR", "DESC")
_AFTER = _NEIGHBOURS.replace("CMP", ">").replace("DIR", "ASC")
_IS_SESSION_EPISODE = "c.kind = 'episodic' AND c.session_id IS NOT NULL"

# The documents of the given cubes and of the episodes within two places of them, rewritten where they
# changed. A cube that is not an active episode of a session gets its own words only.
SQL_REFRESH = (
    "WITH changed AS (SELECT * FROM memcubes WHERE tenant = %(tenant)s AND id = ANY(%(ids)s)), "
    "affected AS ("
    "  SELECT id FROM changed"
    "  UNION SELECT b.id FROM changed c CROSS JOIN LATERAL (" + _BEFORE + ") b WHERE " + _IS_SESSION_EPISODE +
    "  UNION SELECT a.id FROM changed c CROSS JOIN LATERAL (" + _AFTER + ") a WHERE " + _IS_SESSION_EPISODE +
    "  UNION SELECT id FROM unnest(%(also)s::uuid[]) AS id"
    "), docs AS ("
    "  SELECT c.id, CASE WHEN " + _IS_SESSION_EPISODE + " AND c.status = 'active' THEN"
    "    setweight(c.tsv, 'A') || setweight(coalesce(b.v[1], '') || coalesce(a.v[1], ''), 'B')"
    "    || setweight(coalesce(b.v[2], '') || coalesce(a.v[2], ''), 'C')"
    "    ELSE setweight(c.tsv, 'A') END AS doc"
    "  FROM memcubes c"
    "  CROSS JOIN LATERAL (SELECT array_agg(n.tsv ORDER BY n.at DESC, n.seq DESC) AS v FROM (" + _BEFORE + ") n) b"
    "  CROSS JOIN LATERAL (SELECT array_agg(n.tsv ORDER BY n.at, n.seq) AS v FROM (" + _AFTER + ") n) a"
    "  WHERE c.tenant = %(tenant)s AND c.id IN (SELECT id FROM affected)"
    ") "
    "UPDATE memcubes m SET search_tsv = docs.doc, search_len = memcube_search_len(docs.doc) "
    "FROM docs WHERE m.id = docs.id AND m.search_tsv IS DISTINCT FROM docs.doc"
)

# The episodes next to cubes about to move (another session, user or time): their documents lose the mover.
SQL_NEIGHBOUR_IDS = (
    "SELECT n.id FROM memcubes c CROSS JOIN LATERAL ((" + _BEFORE + ") UNION ALL (" + _AFTER + ")) n "
    "WHERE c.tenant = %(tenant)s AND c.id = ANY(%(ids)s) AND " + _IS_SESSION_EPISODE
)


def neighbour_ids(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[UUID]:
    """Return the episodes within two places of the given cubes in their sessions (before they move)."""
    rows = conn.execute(SQL_NEIGHBOUR_IDS, {"tenant": tenant, "ids": list(cube_ids)}).fetchall()
    return [row["id"] for row in rows]


def refresh_search_text(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID],
                        also: Sequence[UUID] = ()) -> int:
    """Rewrite the search documents of the given cubes, of the episodes next to them, and of `also` (the
    former neighbours of a cube that moved); return how many changed."""
    if not cube_ids and not also:
        return 0
    return conn.execute(SQL_REFRESH, {"tenant": tenant, "ids": list(cube_ids), "also": list(also)}).rowcount
