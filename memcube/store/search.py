"""SQL for hybrid search: vector and full-text candidates of one scope, in one round trip.

Two vector plans, chosen by the caller from the scope's size:
- `exact`: orders by `embedding <=> q`. The HNSW index is built on the expression
  `embedding::vector(dim)`, so this expression cannot use it: the planner walks the
  scope btree and computes every distance. Recall 1.0, and no generic plan can
  switch it onto the index.
- `hnsw`: orders by `embedding::vector(dim) <=> q`, which matches the index, with
  iterative scan so the scope filter does not starve the result.

Full-text candidates are an OR of the query's lexemes within the scope, ranked by `ts_rank`
(on LoCoMo it beats `ts_rank_cd` and BM25 alone: bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Sequence

import numpy as np
import psycopg
from psycopg import sql

from memcube.store.cubes import CUBE_COLUMNS

Plan = Literal["exact", "hnsw"]

# An OR query of the text's lexemes (plainto_tsquery ANDs them, which is far too strict for recall),
# without the lexemes in %(common)s: words found in a large share of all memories match thousands of
# rows, every match must be ranked, and they say little about relevance (IDF). If every lexeme is
# common, all of them are kept. Each lexeme is quoted for tsquery input (backslashes and quotes escaped).
TSQUERY = (
    "coalesce(nullif(array_to_string(ARRAY("
    r"  SELECT '''' || replace(replace(l, E'\\', E'\\\\'), '''', '''''') || ''''"
    "  FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS l WHERE l <> ALL(%(common)s::text[])"
    "), ' | '), ''), replace(plainto_tsquery('english', %(text)s)::text, ' & ', ' | '))::tsquery"
)
# Lexemes of the tsv column found in more than a given share of rows, from ANALYZE's statistics
# (the frequency array carries three summary numbers after the per-element ones: unnest pads the
# lexemes with NULLs there).
SQL_COMMON_LEXEMES = (
    "SELECT e.lexeme FROM pg_stats s, "
    "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e(lexeme, freq) "
    "WHERE s.schemaname = current_schema() AND s.tablename = 'memcubes' AND s.attname = 'tsv' "
    "AND e.lexeme IS NOT NULL AND e.freq > %s"
)
SQL_HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
    "set_config('hnsw.ef_search', %s, true), set_config('hnsw.max_scan_tuples', %s, true)"
)


@dataclass(frozen=True)
class ScopeFilter:
    """Which cubes a search may return."""

    tenant: str
    agent_id: str
    user_id: str | None = None
    session_id: str | None = None
    kinds: Sequence[str] | None = None
    tiers: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    statuses: Sequence[str] = ("active",)
    as_of: datetime | None = None
    # With a user_id: also the agent's memories that belong to no user.
    include_shared: bool = False


def _where(scope: ScopeFilter, alias: str) -> tuple[sql.Composable, dict[str, Any]]:
    col = lambda name: sql.Identifier(alias, name)  # noqa: E731 - a local shorthand
    parts = [sql.SQL("{} = %(tenant)s").format(col("tenant")), sql.SQL("{} = %(agent_id)s").format(col("agent_id"))]
    params: dict[str, Any] = {"tenant": scope.tenant, "agent_id": scope.agent_id}
    for name in ("user_id", "session_id"):
        value = getattr(scope, name)
        if value is not None:
            if name == "user_id" and scope.include_shared:
                parts.append(sql.SQL("({} = %(user_id)s OR {} IS NULL)").format(col(name), col(name)))
            else:
                parts.append(sql.SQL("{} = {}").format(col(name), sql.Placeholder(name)))
            params[name] = value
    for name, column in (("kinds", "kind"), ("tiers", "tier"), ("statuses", "status")):
        values = getattr(scope, name)
        if values:
            parts.append(sql.SQL("{} = ANY({})").format(col(column), sql.Placeholder(name)))
            params[name] = list(values)
    if scope.tags:
        parts.append(sql.SQL("{} @> {}").format(col("tags"), sql.Placeholder("tags")))
        params["tags"] = list(scope.tags)
    if scope.as_of is not None:
        # Valid time: what was true at as_of, whenever it was recorded.
        parts.append(sql.SQL("coalesce({}, {}, {}) <= %(as_of)s AND ({} IS NULL OR {} > %(as_of)s)").format(
            col("valid_from"), col("occurred_at"), col("created_at"), col("valid_to"), col("valid_to")))
        params["as_of"] = scope.as_of
    return sql.SQL(" AND ").join(parts), params


def search_candidates(conn: psycopg.Connection, *, scope: ScopeFilter, query_vector: np.ndarray, text: str,
                      n_vector: int, n_text: int, plan: Plan, dim: int, ef_search: int = 100,
                      max_scan_tuples: int = 100_000, common_lexemes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Return the union of the top vector and top full-text candidates of a scope, each row with
    `vector_distance` and `text_score` (None where that retriever did not find it).

    `common_lexemes` are left out of the full-text query (see TSQUERY)."""
    where, params = _where(scope, "m")
    params.update({"q": query_vector, "text": text, "n_vector": n_vector, "n_text": n_text,
                   "common": list(common_lexemes)})
    if plan == "exact":
        distance = sql.SQL("m.embedding <=> %(q)s")
    else:
        conn.execute(SQL_HNSW_SETTINGS, (str(ef_search), str(max_scan_tuples)))
        distance = sql.SQL("m.embedding::vector({dim}) <=> %(q)s::vector({dim})").format(dim=sql.Literal(dim))
    query = sql.SQL(
        "WITH vec AS ("
        "  SELECT m.id, {distance} AS distance FROM memcubes m"
        "  WHERE {where} AND m.embedding IS NOT NULL ORDER BY {distance} LIMIT %(n_vector)s"
        "), txt AS ("
        "  SELECT m.id, ts_rank(m.tsv, tq.q) AS score FROM memcubes m, (SELECT " + TSQUERY + " AS q) AS tq"
        "  WHERE {where} AND m.tsv @@ tq.q ORDER BY score DESC, m.id LIMIT %(n_text)s"
        "), ids AS (SELECT id FROM vec UNION SELECT id FROM txt) "
        "SELECT {columns}, vec.distance AS vector_distance, txt.score AS text_score "
        "FROM ids JOIN memcubes m ON m.id = ids.id LEFT JOIN vec ON vec.id = ids.id LEFT JOIN txt ON txt.id = ids.id"
    ).format(distance=distance, where=where, columns=sql.SQL(", ").join(
        sql.SQL("m.{}").format(sql.Identifier(c.strip())) for c in CUBE_COLUMNS.split(",")))
    # prepare=False: a prepared statement drifts to a generic plan after a few runs, and the generic
    # plan of the hnsw query walks the btree and sorts the whole scope (bench/plan_cache.py: 54 ms -> 173 ms).
    return conn.execute(query, params, prepare=False).fetchall()


def common_lexemes(conn: psycopg.Connection, *, min_fraction: float) -> list[str]:
    """Return the lexemes ANALYZE found in more than `min_fraction` of all memories (empty before ANALYZE)."""
    return [row["lexeme"] for row in conn.execute(SQL_COMMON_LEXEMES, (min_fraction,)).fetchall()]


def count_vector_matches(conn: psycopg.Connection, *, scope: ScopeFilter, cap: int) -> int:
    """Return how many cubes of the scope carry a vector, counting no further than `cap`."""
    where, params = _where(scope, "m")
    params["cap"] = cap
    query = sql.SQL(
        "SELECT count(*) AS n FROM (SELECT 1 FROM memcubes m WHERE {} AND m.embedding IS NOT NULL LIMIT %(cap)s) s"
    ).format(where)
    return conn.execute(query, params).fetchone()["n"]
