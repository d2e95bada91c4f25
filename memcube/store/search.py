"""SQL for hybrid search: vector and full-text candidates of one scope, in one round trip.

Two vector plans, chosen by the caller from the scope's size:
- `exact`: orders by `embedding <=> q`. The HNSW index is built on the expression
  `embedding::vector(dim)`, so this expression cannot use it: the planner walks the
  scope btree and computes every distance. Recall 1.0, and no generic plan can
  switch it onto the index.
- `hnsw`: orders by `embedding::vector(dim) <=> q`, which matches the index, with
  iterative scan so the scope filter does not starve the result.

Full-text candidates are the scope's cubes whose search document (`search_tsv`: a cube's own words and, for
a conversation turn, the words of the turns around it at lower weight; store/search_text.py) holds any of
the query's words, ranked by BM25 within the scope: a word's document frequency is counted among the scope's
matches, and the number of documents and their mean length come from the scope (`scope_text_stats`), so no
other scope or tenant changes a ranking. Words the caller found too common in the scope are left out before
matching (memcube.search).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Sequence
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

Plan = Literal["exact", "hnsw"]

# BM25's usual constants: term-frequency saturation and length normalization (Robertson & Zaragoza).
BM25_K1 = 1.2
BM25_B = 0.75

SQL_QUERY_LEXEMES = (
    "SELECT coalesce(array_agg(DISTINCT l ORDER BY l), ARRAY[]::text[]) AS lexemes "
    "FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS l"
)
# A lexeme quoted for tsquery input (backslashes and quotes escaped): taken verbatim, never parsed again.
_LEXEME_QUERY = r"('''' || replace(replace(l, E'\\', E'\\\\'), '''', '''''') || '''')::tsquery"
# How many of a scope's active cubes hold the lexeme `l`, counting no further than %(cap)s.
_LEXEME_COUNT = (
    "(SELECT count(*) FROM (SELECT 1 FROM memcubes m WHERE m.tenant = %(tenant)s "
    "AND m.agent_id = %(agent_id)s AND {user} AND m.status = 'active' AND m.kind = ANY(%(kinds)s) "
    "AND m.search_tsv @@ " + _LEXEME_QUERY + " LIMIT %(cap)s) AS s)"
)
SQL_LEXEME_COUNTS = "SELECT l AS lexeme, " + _LEXEME_COUNT + " AS n FROM unnest(%(lexemes)s::text[]) AS l"
# The words of a query (as SQL_QUERY_LEXEMES, in its order) with their counts (as SQL_LEXEME_COUNTS; NULL for
# the words the caller knows already): a new question's words and counts in one round trip, not two.
SQL_QUERY_LEXEME_COUNTS = (
    "WITH q AS (" + SQL_QUERY_LEXEMES + ") SELECT l AS lexeme, CASE WHEN l = ANY(%(known)s::text[]) THEN NULL "
    "ELSE " + _LEXEME_COUNT + " END AS n FROM q, unnest(q.lexemes) WITH ORDINALITY AS u(l, i) ORDER BY i"
)
SQL_SCOPE_TEXT_STATS = (
    "SELECT count(*) AS docs, coalesce(avg(search_len), 0) AS avg_len FROM memcubes m "
    "WHERE m.tenant = %(tenant)s AND m.agent_id = %(agent_id)s AND {user} AND m.status = 'active' "
    "AND m.kind = ANY(%(kinds)s)"
)
# What a candidate carries: the fields of a hit (memcube.models.Hit), its metadata as text (parsed for the k
# returned only), and of its provenance what evidence is read from (`source` and `derived_from`, where it has
# a `derived_from`). Every column of ~60 candidates, to return 10, made the candidate query 1-1.5 ms slower
# (5.5 ms against 4 ms at 100-row scopes, most of it loading rows in Python).
CANDIDATE_COLUMNS = (
    "m.id, m.agent_id, m.user_id, m.session_id, m.kind, m.tier, m.content, m.tags, "
    "m.metadata::text AS metadata_json, m.occurred_at, m.valid_from, m.valid_to, m.importance, m.status, "
    "m.version, m.created_at, CASE WHEN m.provenance ? 'derived_from' THEN jsonb_build_object("
    "'source', m.provenance->'source', 'derived_from', m.provenance->'derived_from') END AS provenance"
)
# What a hit shows of the memories it points to (memcube.models.CubeRef), and whether they are active.
SQL_REFS = "SELECT id, kind, content, occurred_at, status FROM memcubes WHERE tenant = %s AND id = ANY(%s)"
SQL_HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
    "set_config('hnsw.ef_search', %s, true), set_config('hnsw.max_scan_tuples', %s, true)"
)
# The full-text half: the scope's documents holding any of the words, each word's document frequency among
# them, and BM25 (an occurrence counts with the weight of its place: store/search_text.py).
_TEXT_CTES = (
    "txt_rows AS MATERIALIZED ("
    "  SELECT m.id, m.search_tsv, m.search_len FROM memcubes m"
    "  WHERE {where} AND m.search_tsv @@ %(tsquery)s::tsquery"
    "), txt_terms AS ("
    "  SELECT r.id, r.search_len AS len, u.lexeme,"
    "         (SELECT sum(memcube_term_weight(w)) FROM unnest(u.weights) AS w) AS tf"
    "  FROM txt_rows r, unnest(r.search_tsv) AS u WHERE u.lexeme = ANY(%(lexemes)s::text[])"
    "), txt_df AS ("
    "  SELECT lexeme, count(*) AS df FROM txt_terms GROUP BY lexeme"
    "), txt AS ("
    "  SELECT t.id, sum(ln(1 + (greatest(%(docs)s, d.df) - d.df + 0.5) / (d.df + 0.5))"
    "                   * t.tf * (%(k1)s + 1) / (t.tf + %(k1)s * (1 - %(b)s + %(b)s * t.len / %(avg_len)s))) AS score"
    "  FROM txt_terms t JOIN txt_df d USING (lexeme) GROUP BY t.id ORDER BY score DESC, t.id LIMIT %(n_text)s"
    ")"
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


@dataclass(frozen=True)
class TextQuery:
    """The full-text half of a search: the query's words kept, and the scope's document count and mean length."""

    lexemes: Sequence[str]
    docs: int
    avg_len: float


def tsquery_text(lexemes: Sequence[str], weights: str = "") -> str | None:
    """Return tsquery input matching any of the lexemes, each quoted verbatim (and, with `weights`, only
    at places of those weights); None when there are none."""
    if not lexemes:
        return None
    suffix = ":" + weights if weights else ""
    return " | ".join("'" + lex.replace("\\", "\\\\").replace("'", "''") + "'" + suffix for lex in lexemes)


# Which filters of a ScopeFilter are set. A statement is composed once for each shape and kept: composing and
# rendering the candidate query cost ~0.45 ms a search, more than fusing its candidates.
Shape = tuple[bool, bool, bool, bool, bool, bool, bool, bool]


def _shape(scope: ScopeFilter) -> Shape:
    return (scope.user_id is not None, scope.user_id is not None and scope.include_shared,
            scope.session_id is not None, bool(scope.kinds), bool(scope.tiers), bool(scope.statuses),
            bool(scope.tags), scope.as_of is not None)


def _where(scope: ScopeFilter, alias: str) -> tuple[sql.Composable, dict[str, Any]]:
    return _where_sql(_shape(scope), alias), _where_params(scope)


def _where_params(scope: ScopeFilter) -> dict[str, Any]:
    params: dict[str, Any] = {"tenant": scope.tenant, "agent_id": scope.agent_id}
    for name in ("user_id", "session_id"):
        value = getattr(scope, name)
        if value is not None:
            params[name] = value
    for name in ("kinds", "tiers", "statuses", "tags"):
        values = getattr(scope, name)
        if values:
            params[name] = list(values)
    if scope.as_of is not None:
        params["as_of"] = scope.as_of
    return params


@functools.cache
def _where_sql(shape: Shape, alias: str) -> sql.Composable:
    user, shared, session, kinds, tiers, statuses, tags, as_of = shape
    col = lambda name: sql.Identifier(alias, name)  # noqa: E731 - a local shorthand
    parts = [sql.SQL("{} = %(tenant)s").format(col("tenant")), sql.SQL("{} = %(agent_id)s").format(col("agent_id"))]
    if user:
        if shared:
            parts.append(sql.SQL("({} = %(user_id)s OR {} IS NULL)").format(col("user_id"), col("user_id")))
        else:
            parts.append(sql.SQL("{} = %(user_id)s").format(col("user_id")))
    if session:
        parts.append(sql.SQL("{} = %(session_id)s").format(col("session_id")))
    for present, name, column in ((kinds, "kinds", "kind"), (tiers, "tiers", "tier"),
                                  (statuses, "statuses", "status")):
        if present:
            parts.append(sql.SQL("{} = ANY({})").format(col(column), sql.Placeholder(name)))
    if tags:
        parts.append(sql.SQL("{} @> %(tags)s").format(col("tags")))
    if as_of:
        # Valid time: what was true at as_of, whenever it was recorded.
        parts.append(sql.SQL("coalesce({}, {}, {}) <= %(as_of)s AND ({} IS NULL OR {} > %(as_of)s)").format(
            col("valid_from"), col("occurred_at"), col("created_at"), col("valid_to"), col("valid_to")))
    # Rendered once: psycopg would walk the composed tree again at every execution.
    return sql.SQL(sql.SQL(" AND ").join(parts).as_string())


def _user(user_id: str | None) -> sql.Composable:
    """The user part of a statistics scope: one user's cubes, or the whole agent's."""
    return sql.SQL("m.user_id = %(user_id)s") if user_id is not None else sql.SQL("true")


def search_candidates(conn: psycopg.Connection, *, scope: ScopeFilter, query_vector: np.ndarray,
                      text: TextQuery | None, n_vector: int, n_text: int, plan: Plan, dim: int,
                      ef_search: int = 100, max_scan_tuples: int = 100_000,
                      evidence: bool = False) -> list[dict[str, Any]]:
    """Return the union of the top vector and top full-text candidates of a scope (CANDIDATE_COLUMNS), each row
    with `vector_distance` and `text_score` (BM25; None where that retriever did not find it), and `text_own`:
    whether the cube's own words matched (not only the words of turns next to it). With `evidence`, also the
    evidence in scope of the facts among them that consolidation derived (memcube.search.derived_evidence) that
    neither retriever found: None, None and false, and `evidence_only` (false for the candidates)."""
    params = _where_params(scope)
    lexemes = list(text.lexemes) if text is not None else []
    params.update({"q": query_vector, "n_vector": n_vector, "n_text": n_text, "lexemes": lexemes,
                   "tsquery": tsquery_text(lexemes), "own": tsquery_text(lexemes, "A"), "docs": text.docs if text else 0,
                   "avg_len": max(text.avg_len, 1.0) if text else 1.0, "k1": BM25_K1, "b": BM25_B})
    if plan != "exact":
        conn.execute(SQL_HNSW_SETTINGS, (str(ef_search), str(max_scan_tuples)))
    # Only the exact plan is prepared. A prepared statement drifts to a generic plan after a few runs: the
    # generic plan of the hnsw query walks the btree and sorts the whole scope (bench/plan_cache.py: 54 ms ->
    # 173 ms), so it is planned afresh each time; the exact query orders by an expression no index serves, so its
    # generic plan is the custom one's, and preparing it saves the planning, 3-6 ms of a search at 100-row
    # scopes (bench/overhead.py).
    return conn.execute(_candidate_sql(_shape(scope), plan, dim, evidence), params,
                        prepare=plan == "exact").fetchall()


# The evidence of the derived facts among the candidates (`cand`), by the rule of
# memcube.search.derived_evidence, for the ids written as EVIDENCE_ID_FORM (any other form Python reads as an id
# is left to the caller).
EVIDENCE_ID_FORM = r"[0-9a-f]{4}(-?[0-9a-f]{4}){7}|\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}"
_EVIDENCE = (
    ", ev AS (SELECT DISTINCT (r->>'id')::uuid AS id FROM cand c, jsonb_array_elements(CASE WHEN "
    "jsonb_typeof(c.provenance->'derived_from') = 'array' THEN c.provenance->'derived_from' END) AS r "
    "WHERE c.kind = 'semantic' AND c.provenance->>'source' = 'consolidation' AND r->>'id' ~* "
    "'^(" + EVIDENCE_ID_FORM.replace("{", "{{").replace("}", "}}") + ")$') "
    "SELECT *, false AS evidence_only FROM cand UNION ALL SELECT " + CANDIDATE_COLUMNS + ", NULL, NULL, false, "
    "true FROM memcubes m WHERE m.id IN (SELECT id FROM ev EXCEPT SELECT id FROM cand) AND {scope}"
)


@functools.cache
def _candidate_sql(shape: Shape, plan: Plan, dim: int, evidence: bool = False) -> sql.SQL:
    # `where` filters what the retrievers search; `scope`, the evidence rows read by id.
    where = scope = _where_sql(shape, "m")
    if plan == "exact":
        distance = sql.SQL("m.embedding <=> %(q)s")
        indexed = sql.SQL("")
    else:
        distance = sql.SQL("m.embedding::vector({dim}) <=> %(q)s::vector({dim})").format(dim=sql.Literal(dim))
        # The index holds only the rows of indexed scopes (`ann`): the filter must name it for the index to serve.
        indexed = sql.SQL(" AND m.ann")
    candidates = (
        "SELECT " + CANDIDATE_COLUMNS + ", vec.distance AS vector_distance, txt.score AS text_score, "
        # Whether the cube's own words matched, not only its neighbours'.
        "txt.id IS NOT NULL AND m.search_tsv @@ %(own)s::tsquery AS text_own "
        "FROM ids JOIN memcubes m ON m.id = ids.id LEFT JOIN vec ON vec.id = ids.id LEFT JOIN txt ON txt.id = ids.id"
    )
    query = sql.SQL(
        "WITH vec AS ("
        "  SELECT m.id, {distance} AS distance FROM memcubes m"
        "  WHERE {where}{indexed} AND m.embedding IS NOT NULL ORDER BY {distance} LIMIT %(n_vector)s"
        "), " + _TEXT_CTES + ", ids AS (SELECT id FROM vec UNION SELECT id FROM txt) "
        + (", cand AS (" + candidates + ")" + _EVIDENCE if evidence else candidates)
    ).format(distance=distance, where=where, scope=scope, indexed=indexed)
    return sql.SQL(query.as_string())


def cubes_in_scope(conn: psycopg.Connection, *, scope: ScopeFilter, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return those of the given cubes that the scope filter admits (CANDIDATE_COLUMNS, any order)."""
    if not cube_ids:
        return []
    params = _where_params(scope)
    params["ids"] = list(cube_ids)
    return conn.execute(_in_scope_sql(_shape(scope)), params).fetchall()


@functools.cache
def _in_scope_sql(shape: Shape) -> sql.SQL:
    query = sql.SQL("SELECT " + CANDIDATE_COLUMNS + " FROM memcubes m WHERE {} AND m.id = ANY(%(ids)s)").format(
        _where_sql(shape, "m"))
    return sql.SQL(query.as_string())


def cube_refs(conn: psycopg.Connection, *, tenant: str, cube_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Return what a hit shows of the given cubes of the tenant (SQL_REFS: id, kind, content, occurred_at and
    status), in the order of `cube_ids`."""
    rows = conn.execute(SQL_REFS, (tenant, list(cube_ids))).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in cube_ids if i in by_id]


def query_lexemes(conn: psycopg.Connection, text: str) -> list[str]:
    """Return the distinct lexemes of a text as full-text search normalizes them (stop words dropped)."""
    return list(conn.execute(SQL_QUERY_LEXEMES, {"text": text}).fetchone()["lexemes"])


def scope_text_stats(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                     kinds: Sequence[str]) -> tuple[int, float]:
    """Return the number of active cubes of the given kinds in a scope (an agent, or one user of it) and their
    mean document length."""
    row = conn.execute(_scoped(SQL_SCOPE_TEXT_STATS, user_id is not None),
                       {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "kinds": list(kinds)}).fetchone()
    return int(row["docs"]), float(row["avg_len"])


def lexeme_counts(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                  kinds: Sequence[str], lexemes: Sequence[str], cap: int) -> dict[str, int]:
    """Return how many active cubes of the given kinds in the scope hold each lexeme, counting each no further
    than `cap`."""
    if not lexemes:
        return {}
    rows = conn.execute(_scoped(SQL_LEXEME_COUNTS, user_id is not None),
                        {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "kinds": list(kinds),
                         "lexemes": list(lexemes), "cap": cap}).fetchall()
    return {row["lexeme"]: int(row["n"]) for row in rows}


def query_lexeme_counts(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                        kinds: Sequence[str], text: str, known: Sequence[str],
                        cap: int) -> list[tuple[str, int | None]]:
    """Return the lexemes of a text (as `query_lexemes`), each with how many active cubes of the given kinds in
    the scope hold it, counted no further than `cap` (as `lexeme_counts`); None for the lexemes in `known`."""
    rows = conn.execute(_scoped(SQL_QUERY_LEXEME_COUNTS, user_id is not None),
                        {"tenant": tenant, "agent_id": agent_id, "user_id": user_id, "kinds": list(kinds),
                         "text": text, "known": list(known), "cap": cap}).fetchall()
    return [(row["lexeme"], None if row["n"] is None else int(row["n"])) for row in rows]


@functools.cache
def _scoped(statement: str, one_user: bool) -> sql.SQL:
    """A statistics statement over one user's cubes or the whole agent's, composed once."""
    return sql.SQL(sql.SQL(statement).format(user=_user("" if one_user else None)).as_string())


def count_vector_matches(conn: psycopg.Connection, *, scope: ScopeFilter, cap: int) -> int:
    """Return how many cubes of the scope carry a vector, counting no further than `cap`."""
    where, params = _where(scope, "m")
    params["cap"] = cap
    query = sql.SQL(
        "SELECT count(*) AS n FROM (SELECT 1 FROM memcubes m WHERE {} AND m.embedding IS NOT NULL LIMIT %(cap)s) s"
    ).format(where)
    return conn.execute(query, params).fetchone()["n"]
