"""The service's own candidate query, captured and run directly with psycopg; EXPLAIN of its plans."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from memcube.config import Settings
from memcube.db import connect
from memcube.search import SearchStats
from memcube.store.search import ScopeFilter, TextQuery, search_candidates

NO_MATCH_TEXT = "zzqxjvkw"  # a lexeme no text holds: the full-text half finds nothing, the vector half runs alone


class _Capture:
    """Stands in for a connection: records the statements search_candidates would send, sends nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def execute(self, query: Any, params: Any = None, **_: Any) -> "_Capture":
        self.calls.append((query, params))
        return self

    def fetchall(self) -> list[Any]:
        return []


class ServiceText:
    """The full-text half the service would search with in a scope now (the query's words without those too
    common in the scope, and the scope's statistics, as memcube.search.SearchStats works them out): pass it
    to `candidate_statements`."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.stats = SearchStats(3600)

    def __call__(self, tenant: str, agent_id: str, text: str) -> TextQuery:
        with connect(self.url) as conn:
            return self.stats.text_query(conn, tenant=tenant, agent_id=agent_id, user_id=None,
                                         lexemes=self.stats.query_lexemes(conn, text),
                                         common_fraction=self.settings.text_common_fraction,
                                         max_matches=self.settings.text_max_word_matches)


def service_text(url: str, settings: Settings) -> ServiceText:
    """The full-text half the service would use on this database (see ServiceText)."""
    return ServiceText(url, settings)


def candidate_statements(settings: Settings, *, tenant: str, agent_id: str, vector: np.ndarray, text: str,
                         plan: str, dim: int, words: ServiceText, k: int = 10) -> list[tuple[Any, Any]]:
    """The statements memcube.store.search.search_candidates sends for one search in the default mode (derived
    facts stand for their evidence, which the candidate query brings), with the service's candidate count
    (max(MEMCUBE_SEARCH_CANDIDATES, 2k)), ef_search (max(MEMCUBE_HNSW_EF_SEARCH, n)) and full-text half
    (`service_text`)."""
    n = max(settings.search_candidates, 2 * k)
    capture = _Capture()
    search_candidates(capture, scope=ScopeFilter(tenant=tenant, agent_id=agent_id), query_vector=vector,  # type: ignore[arg-type]
                      text=words(tenant, agent_id, text), n_vector=n, n_text=n, plan=plan, dim=dim,  # type: ignore[arg-type]
                      ef_search=max(settings.hnsw_ef_search, n), evidence=True)
    return capture.calls


def run_statements(conn: psycopg.Connection, statements: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Run captured statements in one transaction (as one API request does) and return the last one's rows."""
    for query, params in statements[:-1]:
        conn.execute(query, params)
    rows = conn.execute(*statements[-1]).fetchall()
    conn.commit()
    return rows


def explain(conn: psycopg.Connection, statements: list[tuple[Any, Any]], analyze: bool = True) -> str:
    """EXPLAIN the candidate query (after its session settings), in the same transaction; rolled back."""
    try:
        for query, params in statements[:-1]:
            conn.execute(query, params)
        query, params = statements[-1]
        head = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " if analyze else "EXPLAIN (COSTS OFF) ")
        rows = conn.execute(head + query, params).fetchall()
        return "\n".join(next(iter(r.values())) if isinstance(r, dict) else r[0] for r in rows)
    finally:
        conn.rollback()


def explain_generic(conn: psycopg.Connection, statements: list[tuple[Any, Any]]) -> str:
    """EXPLAIN (GENERIC_PLAN) of the candidate query: the plan a prepared statement may switch to
    after five runs, with every parameter unknown."""
    query, params = statements[-1]
    text = query.as_string(conn) if not isinstance(query, str) else query
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = re.sub(r"%\((\w+)\)s", number, text)
    try:
        for q, p in statements[:-1]:
            conn.execute(q, p)
        rows = conn.execute("EXPLAIN (GENERIC_PLAN, COSTS OFF) " + text).fetchall()
        return "\n".join(next(iter(r.values())) if isinstance(r, dict) else r[0] for r in rows)
    except psycopg.Error as exc:
        return f"(EXPLAIN GENERIC_PLAN failed: {exc})"
    finally:
        conn.rollback()


def vector_indexes(plan_text: str) -> str:
    """Which index the `vec` CTE of a plan walks (the part of the plan that orders by distance)."""
    section, found = None, []
    for line in plan_text.splitlines():
        stripped = line.strip()
        m = re.match(r"CTE (\w+)", stripped)
        if m:
            section = m.group(1)
            continue
        if re.match(r"^(->\s*)?(Hash|Nested|Merge|Sort|Limit|Subquery|Aggregate|HashAggregate|Unique|Append)",
                    stripped) and line[:len(line) - len(line.lstrip())] == "":
            section = None
        if section != "vec":
            continue
        m = re.search(r"(Index Scan|Index Only Scan|Bitmap Index Scan|Seq Scan)(?: using| on)? (\w+)", stripped)
        if m:
            found.append(f"{m.group(1)} {m.group(2)}")
    return ", ".join(dict.fromkeys(found)) or "?"


def short_plan(plan_text: str) -> str:
    """The plan with vector literals elided."""
    return re.sub(r"'\[[^\]]*\]'", "'[...]'", plan_text)
