"""SQL that keeps each cube's search document (`search_tsv`, `search_len`) right.

A cube's search document is its own words with weight A. An episode of a session (kind `episodic` with a
`session_id`) also carries the words of the active episode before it in the session, in time order, with
weight B, and of the one before that with weight C (migrations/0006_search_text.sql): an answer is then found
by the words of the question it answers. A document looks back only, so a new turn's document is written
complete by its INSERT (`DOCUMENT`) and an append never rewrites an older row. What does rewrite documents:
a turn inserted before later ones, a change of content or status, a move to another session or time, an
erase — each rewrites the documents of the (at most two) active turns after it. Functions never commit:
the caller owns the transaction.
"""

from __future__ import annotations

from typing import Sequence
from uuid import UUID

import psycopg

# Changes after which the documents of a cube and of the turns after it must be written again.
TEXT_FIELDS = frozenset({"content", "status", "kind"})
# Changes that move an episode to another place: the turns after its old place lose its words.
POSITION_FIELDS = frozenset({"session_id", "user_id", "agent_id", "occurred_at", "kind"})

_POSITION = "(coalesce({a}.occurred_at, {a}.created_at), {a}.seq)"
_SAME_SESSION = (
    "m.tenant = c.tenant AND m.agent_id = c.agent_id AND coalesce(m.user_id, '') = coalesce(c.user_id, '') "
    "AND m.session_id = c.session_id AND m.kind = 'episodic' AND m.status = 'active' AND m.id <> c.id"
)
# The two active turns before a cube `c` in its session, nearest first, as an array of their own words.
_BEFORE = (
    "SELECT array_agg(n.tsv ORDER BY n.at DESC, n.seq DESC) FROM ("
    "  SELECT m.tsv, coalesce(m.occurred_at, m.created_at) AS at, m.seq FROM memcubes m"
    "  WHERE " + _SAME_SESSION + " AND " + _POSITION.format(a="m") + " < " + _POSITION.format(a="c") +
    "  ORDER BY coalesce(m.occurred_at, m.created_at) DESC, m.seq DESC LIMIT 2) AS n"
)
# The two active turns after a cube `c` (whose documents hold its words).
_AFTER = (
    "SELECT m.id FROM memcubes m WHERE " + _SAME_SESSION + " AND " + _POSITION.format(a="m") + " > "
    + _POSITION.format(a="c") + " ORDER BY coalesce(m.occurred_at, m.created_at), m.seq LIMIT 2"
)
_IS_SESSION_EPISODE = "c.kind = 'episodic' AND c.session_id IS NOT NULL"

# The search document of a cube being inserted (the INSERT's own parameters): its words, and for an episode of
# a session those of the two turns before it. A new row's position is after every row of its time (its seq
# is the newest), so "before" is every active turn of the session at or before its time.
DOCUMENT = (
    "(SELECT CASE WHEN %(kind)s = 'episodic' AND %(session_id)s::text IS NOT NULL THEN "
    "memcube_search_doc(to_tsvector('english', %(content)s), b.v[1], b.v[2]) "
    "ELSE setweight(to_tsvector('english', %(content)s), 'A') END FROM ("
    "  SELECT array_agg(n.tsv ORDER BY n.at DESC, n.seq DESC) AS v FROM ("
    "    SELECT m.tsv, coalesce(m.occurred_at, m.created_at) AS at, m.seq FROM memcubes m"
    "    WHERE m.session_id = %(session_id)s AND m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s"
    "      AND coalesce(m.user_id, '') = coalesce(%(user_id)s, '') AND m.kind = 'episodic' AND m.status = 'active'"
    "      AND coalesce(m.occurred_at, m.created_at) <= coalesce(%(occurred_at)s, now())"
    "    ORDER BY coalesce(m.occurred_at, m.created_at) DESC, m.seq DESC LIMIT 2) AS n) AS b)"
)

# Whether any active turn, not among the given new ones, sits after one of them in its session: then its
# document must take in the new words (a turn imported into the past). An append at the end finds none.
SQL_HAS_LATER = (
    "WITH new AS MATERIALIZED ("
    "  SELECT tenant, agent_id, coalesce(user_id, '') AS u, session_id,"
    "         min(coalesce(occurred_at, created_at)) AS first_at"
    "  FROM memcubes WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) AND kind = 'episodic' AND session_id IS NOT NULL"
    "  GROUP BY 1, 2, 3, 4"
    ") SELECT EXISTS (SELECT 1 FROM new n JOIN memcubes m ON m.session_id = n.session_id AND m.tenant = n.tenant"
    "  AND m.agent_id = n.agent_id AND coalesce(m.user_id, '') = n.u AND m.kind = 'episodic' AND m.status = 'active'"
    "  AND coalesce(m.occurred_at, m.created_at) >= n.first_at AND m.id <> ALL(%(ids)s)) AS later"
)

# The documents of every active turn of the sessions of the given cubes, rewritten where they changed: one
# ordered pass a session, whose plan does not depend on the table's statistics.
SQL_REFRESH_SESSIONS = (
    "WITH touched AS MATERIALIZED ("
    "  SELECT DISTINCT tenant, agent_id, coalesce(user_id, '') AS u, session_id FROM memcubes"
    "  WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) AND kind = 'episodic' AND session_id IS NOT NULL"
    "), docs AS ("
    "  SELECT m.id, memcube_search_doc(m.tsv, lag(m.tsv, 1) OVER w, lag(m.tsv, 2) OVER w) AS doc"
    "  FROM memcubes m JOIN touched t ON m.session_id = t.session_id AND m.tenant = t.tenant"
    "    AND m.agent_id = t.agent_id AND coalesce(m.user_id, '') = t.u"
    "  WHERE m.kind = 'episodic' AND m.status = 'active'"
    "  WINDOW w AS (PARTITION BY m.tenant, m.agent_id, coalesce(m.user_id, ''), m.session_id"
    "               ORDER BY coalesce(m.occurred_at, m.created_at), m.seq)"
    ") "
    "UPDATE memcubes m SET search_tsv = docs.doc, search_len = memcube_search_len(docs.doc) "
    "FROM docs WHERE m.id = docs.id AND m.search_tsv IS DISTINCT FROM docs.doc"
)

# The documents of the given cubes, of the two turns after each, and of `also` (the turns after a cube's
# old place, before it moved), rewritten where they changed. A cube that is not an active episode of a
# session gets its own words only.
SQL_REFRESH = (
    "WITH changed AS (SELECT * FROM memcubes WHERE tenant = %(tenant)s AND id = ANY(%(ids)s)), "
    "affected AS ("
    "  SELECT id FROM changed"
    "  UNION SELECT a.id FROM changed c CROSS JOIN LATERAL (" + _AFTER + ") a WHERE " + _IS_SESSION_EPISODE +
    "  UNION SELECT id FROM unnest(%(also)s::uuid[]) AS id"
    "), docs AS ("
    "  SELECT c.id, CASE WHEN " + _IS_SESSION_EPISODE + " AND c.status = 'active' THEN"
    "    memcube_search_doc(c.tsv, b.v[1], b.v[2]) ELSE setweight(c.tsv, 'A') END AS doc"
    "  FROM memcubes c CROSS JOIN LATERAL (" + _BEFORE + ") AS b(v)"
    "  WHERE c.tenant = %(tenant)s AND c.id IN (SELECT id FROM affected)"
    ") "
    "UPDATE memcubes m SET search_tsv = docs.doc, search_len = memcube_search_len(docs.doc) "
    "FROM docs WHERE m.id = docs.id AND m.search_tsv IS DISTINCT FROM docs.doc"
)

# The two turns after cubes about to move: their documents lose the mover's words.
SQL_FOLLOWER_IDS = (
    "SELECT n.id FROM memcubes c CROSS JOIN LATERAL (" + _AFTER + ") n "
    "WHERE c.tenant = %(tenant)s AND c.id = ANY(%(ids)s) AND " + _IS_SESSION_EPISODE
)


def follower_ids(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[UUID]:
    """Return the two active turns after each of the given cubes in their sessions (before they move)."""
    rows = conn.execute(SQL_FOLLOWER_IDS, {"tenant": tenant, "ids": list(cube_ids)}).fetchall()
    return [row["id"] for row in rows]


def refresh_search_text(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID],
                        also: Sequence[UUID] = ()) -> int:
    """Rewrite the search documents of changed cubes, of the two turns after each, and of `also` (the turns
    after a cube's old place); return how many changed."""
    if not cube_ids and not also:
        return 0
    return conn.execute(SQL_REFRESH, {"tenant": tenant, "ids": list(cube_ids), "also": list(also)}).rowcount


def refresh_after_insert(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> int:
    """After new episodes of sessions were inserted (their documents complete), rewrite the documents of the
    turns that sit after them, if any; return how many changed."""
    if not cube_ids:
        return 0
    if not conn.execute(SQL_HAS_LATER, {"tenant": tenant, "ids": list(cube_ids)}).fetchone()["later"]:
        return 0
    return conn.execute(SQL_REFRESH_SESSIONS, {"tenant": tenant, "ids": list(cube_ids)}).rowcount
