"""Hybrid search of one scope: plan by scope size, vector + full-text (BM25) candidates, fused ranking, and
derived memories standing for their evidence."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence
from uuid import UUID

import psycopg

from memcube.access import AccessRecorder
from memcube.config import Settings
from memcube.embedder import Embedder
from memcube.errors import InvalidInput
from memcube.models import KINDS, CubeRef, Explain, Hit, SearchRequest
from memcube.ranking import Ranked, RankWeights, fuse
from memcube.store import cubes as cube_store
from memcube.store import search as search_store
from memcube.store import vector_index as index_store
from memcube.store.cubes import to_vector
from memcube.store.search import Plan, ScopeFilter, TextQuery, count_vector_matches, search_candidates

# What a search returns when the caller names no kinds: everything but session summaries, which digest a
# whole session, match nearly any question about it, and would push the turns that answer it out of the
# top k (context assembly and `kinds: ["summary"]` reach them).
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "summary")
# Characters of an evidence or derived memory shown with a hit.
REF_CHARS = 300
# Evidence listed with a derived hit, at most (a session summary rests on every turn of its session).
EVIDENCE_REFS = 20
# Entries a per-process cache holds before it starts again.
CACHE_ENTRIES = 100_000


@dataclass
class _ScopeWords:
    """A scope's text statistics and the document counts of the words asked so far (capped at `cap`)."""

    docs: int
    avg_len: float
    cap: int
    at: float
    counts: dict[str, int] = field(default_factory=dict)


class SearchStats:
    """A per-process cache of what steers search: scope sizes (to choose the plan), each scope's text
    statistics and word counts (which words are too common in it to search by), and the words of queries.
    A ttl of 0 reads them every time."""

    def __init__(self, scope_ttl_seconds: float) -> None:
        self._ttl = scope_ttl_seconds
        self._sizes: dict[tuple[str, str], tuple[int, bool, float]] = {}
        self._words: dict[tuple[str, str, str | None, tuple[str, ...]], _ScopeWords] = {}
        self._lexemes: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def scope_size(self, conn: psycopg.Connection, *, tenant: str, agent_id: str, cap: int) -> int:
        """Return the number of cubes of an agent (counted up to `cap`), recounted every scope ttl."""
        return self.scope(conn, tenant=tenant, agent_id=agent_id, cap=cap)[0]

    def scope(self, conn: psycopg.Connection, *, tenant: str, agent_id: str, cap: int) -> tuple[int, bool]:
        """Return the number of cubes of an agent (counted up to `cap`) and whether the HNSW index holds all of
        their vectors (memcube/vector_index.py), both read again every scope ttl."""
        key = (tenant, agent_id)
        now = time.monotonic()
        with self._lock:
            cached = self._sizes.get(key)
        if cached is not None and now - cached[2] < self._ttl:
            return cached[0], cached[1]
        size = cube_store.scope_size(conn, tenant=tenant, agent_id=agent_id, cap=cap)
        indexed = index_store.state(conn, tenant=tenant, agent_id=agent_id) == "ready"
        with self._lock:
            if len(self._sizes) > CACHE_ENTRIES:
                self._sizes.clear()
            self._sizes[key] = (size, indexed, now)
        return size, indexed

    def query_lexemes(self, conn: psycopg.Connection, text: str) -> list[str]:
        """Return the words of a query as full-text search normalizes them."""
        with self._lock:
            cached = self._lexemes.get(text)
        if cached is not None:
            return cached
        return self._remember(text, search_store.query_lexemes(conn, text))

    def _remember(self, text: str, lexemes: list[str]) -> list[str]:
        with self._lock:
            if len(self._lexemes) > CACHE_ENTRIES // 10:
                self._lexemes.clear()
            self._lexemes[text] = lexemes
        return lexemes

    def text_query(self, conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
                   lexemes: Sequence[str] | None = None, common_fraction: float, max_matches: int,
                   kinds: Sequence[str] = DEFAULT_KINDS, text: str = "") -> TextQuery:
        """Return the full-text half of a search in a scope (an agent, or one user of it, and the kinds searched):
        its words without those found in more than `common_fraction` of the scope's memories or in more than
        `max_matches` of them, unless every word is that common; and the scope's document count and mean length.
        The words are the `lexemes` given, or those of the query `text` (`query_lexemes`)."""
        key = (tenant, agent_id, user_id, tuple(sorted(kinds)))
        now = time.monotonic()
        with self._lock:
            entry = self._words.get(key)
            if lexemes is None:
                lexemes = self._lexemes.get(text)
        if entry is None or now - entry.at >= self._ttl:
            docs, avg_len = search_store.scope_text_stats(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                          kinds=key[3])
            limit = min(common_fraction * docs, float(max_matches))
            entry = _ScopeWords(docs, avg_len, cap=int(limit) + 1, at=now)
        if lexemes is None and common_fraction >= 1.0:
            lexemes = self.query_lexemes(conn, text)
        elif lexemes is None:
            # A new question: its words, and the counts of those not counted yet, in one round trip.
            found = search_store.query_lexeme_counts(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                     kinds=key[3], text=text, known=_known(entry, text),
                                                     cap=entry.cap)
            lexemes = self._remember(text, [lex for lex, _ in found])
            entry.counts.update((lex, n) for lex, n in found if n is not None and lex not in entry.counts)
        missing = [lex for lex in lexemes if lex not in entry.counts]
        if missing and common_fraction < 1.0:
            counted = search_store.lexeme_counts(conn, tenant=tenant, agent_id=agent_id, user_id=user_id,
                                                 kinds=key[3], lexemes=missing, cap=entry.cap)
            entry.counts.update(counted)
        with self._lock:
            if len(self._words) > CACHE_ENTRIES // 10:
                self._words.clear()
            self._words[key] = entry
        if common_fraction >= 1.0:
            kept = list(lexemes)
        else:
            kept = [lex for lex in lexemes if entry.counts.get(lex, 0) < entry.cap] or list(lexemes)
        return TextQuery(kept, entry.docs, entry.avg_len)


def _known(entry: _ScopeWords, text: str) -> list[str]:
    """The words of a scope counted already that may be words of the text: those whose first two letters it
    holds (a stem keeps the start of its word). One left out is only counted again."""
    lowered = text.lower()
    return [lex for lex in entry.counts if lex[:2] in lowered]


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    plan: str


def choose_plan(scope_rows: int, exact_scan_max_rows: int, indexed: bool = True) -> Plan:
    """Exact distances for scopes up to the threshold, and for larger ones until the HNSW index holds all of
    their vectors; the index (iterative scan) above it."""
    return "hnsw" if scope_rows > exact_scan_max_rows and indexed else "exact"


def derived_evidence(row: dict[str, Any]) -> list[UUID]:
    """Return the ids a fact consolidation derived was derived from (what it may stand for in a search); none
    for any other memory."""
    provenance = row.get("provenance") or {}
    if row.get("kind") != "semantic" or provenance.get("source") != "consolidation":
        return []
    return sources_of(row)


def sources_of(row: dict[str, Any]) -> list[UUID]:
    """Return the ids a memory's provenance says it was derived from (a fact, a summary, a lesson, a fusion)."""
    out = []
    for ref in (row.get("provenance") or {}).get("derived_from") or []:
        try:
            out.append(UUID(str(ref["id"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def search(conn: psycopg.Connection, *, tenant: str, request: SearchRequest, embedder: Embedder,
           settings: Settings, stats: SearchStats, access: AccessRecorder | None = None,
           now: datetime | None = None, quarantined: bool = False) -> SearchResult:
    """Return the best `k` cubes of a scope for a query, best first; raises InvalidInput over a limit, or when
    `statuses` asks for quarantined memories and `quarantined` (an operator reviewing them) is not set."""
    if request.k > settings.max_k:
        raise InvalidInput(f"k is at most {settings.max_k} (MEMCUBE_MAX_K); got {request.k}",
                           details={"limit": settings.max_k})
    if request.statuses and "quarantined" in request.statuses and not quarantined:
        raise InvalidInput("quarantined memories are never served by search (poisoning defence); list them with "
                           "GET /v1/memories?status=quarantined", details={"field": "statuses"})
    mode = request.derived or ("evidence" if request.kinds is None else "hits")
    scope = ScopeFilter(
        tenant=tenant, agent_id=request.agent_id, user_id=request.user_id, session_id=request.session_id,
        kinds=request.kinds or DEFAULT_KINDS, tiers=request.tiers, tags=request.tags, as_of=request.as_of,
        include_shared=request.include_shared,
        statuses=request.statuses or (("active", "superseded") if request.as_of else ("active",)),
    )
    vector = to_vector(embedder.embed([request.query])[0])
    n = max(settings.search_candidates, 2 * request.k)
    size, indexed = stats.scope(conn, tenant=tenant, agent_id=request.agent_id, cap=settings.exact_scan_max_rows + 1)
    plan: str = choose_plan(size, settings.exact_scan_max_rows, indexed)
    text = stats.text_query(conn, tenant=tenant, agent_id=request.agent_id, user_id=request.user_id,
                            kinds=scope.kinds or DEFAULT_KINDS, text=request.query,
                            common_fraction=settings.text_common_fraction,
                            max_matches=settings.text_max_word_matches)
    # In the default mode the candidate query also brings the evidence of derived candidates.
    lend = mode == "evidence"
    rows = _candidates(conn, scope, vector, text, n, plan, embedder.dim, settings, lend)
    if plan == "hnsw":
        found = sum(1 for r in rows if r["vector_distance"] is not None)
        # A filter must never silently drop results: if the index came back short, count the scope.
        if found < n and count_vector_matches(conn, scope=scope, cap=n) > found:
            rows = _candidates(conn, scope, vector, text, n, "exact", embedder.dim, settings, lend)
            plan = "hnsw+exact"
    evidence = _evidence_in_scope(conn, scope, rows) if lend else None
    if evidence is not None:
        rows = rows + evidence[1]
    weights = RankWeights(settings.rrf_k, settings.weight_recency, settings.weight_importance,
                          settings.recency_half_life_days)
    ranked = fuse(rows, now=now or datetime.now(timezone.utc), weights=weights,
                  evidence=evidence[0] if evidence is not None else None, limit=request.k)
    sources = _sources(conn, tenant, ranked) if mode == "hits" else {}
    hits = [_hit(r, plan, request.explain, sources) for r in ranked]
    if access is not None:
        access.record([h.id for h in hits])
    return SearchResult(hits=hits, plan=plan)


def _candidates(conn: psycopg.Connection, scope: ScopeFilter, vector: Any, text: TextQuery, n: int, plan: str,
                dim: int, settings: Settings, evidence: bool) -> list[dict[str, Any]]:
    return search_candidates(conn, scope=scope, query_vector=vector, text=text, n_vector=n, n_text=n,
                             plan=plan, dim=dim, ef_search=max(settings.hnsw_ef_search, n),  # type: ignore[arg-type]
                             evidence=evidence)


def _evidence_in_scope(conn: psycopg.Connection, scope: ScopeFilter,
                       rows: list[dict[str, Any]]) -> tuple[dict[UUID, list[UUID]], list[dict[str, Any]]]:
    """Return, for each derived candidate, its evidence that the search may return, and the evidence rows
    not among the rows yet: the candidate query brought the evidence in scope (`evidence_only` rows) of the ids
    written in the form it reads, and this reads that of any other."""
    wanted, read = {}, set()
    for row in rows:
        ids = [] if row.get("evidence_only") else derived_evidence(row)
        if ids:
            wanted[row["id"]] = ids
            read.update(_read_by_query(row))
    if not wanted:
        return {}, []
    present = {row["id"] for row in rows}
    missing = {i for ids in wanted.values() for i in ids if i not in present and i not in read}
    extra = search_store.cubes_in_scope(conn, scope=scope, cube_ids=list(missing))
    for row in extra:
        row["vector_distance"] = row["text_score"] = None
        row["text_own"] = False
    # A derived memory never stands for another derived one.
    eligible = (present | {row["id"] for row in extra}) - set(wanted)
    evidence = {d: [i for i in ids if i in eligible] for d, ids in wanted.items()}
    return {d: ids for d, ids in evidence.items() if ids}, extra


def _read_by_query(row: dict[str, Any]) -> list[UUID]:
    """The evidence ids of a derived row that the candidate query looks up itself (EVIDENCE_ID_FORM)."""
    refs = (row.get("provenance") or {}).get("derived_from") or []
    return [UUID(ref["id"]) for ref in refs if isinstance(ref, dict) and isinstance(ref.get("id"), str)
            and _EVIDENCE_ID.fullmatch(ref["id"])]


_EVIDENCE_ID = re.compile(search_store.EVIDENCE_ID_FORM, re.IGNORECASE)


def _sources(conn: psycopg.Connection, tenant: str, ranked: Sequence[Ranked]) -> dict[UUID, dict[str, Any]]:
    """Return the active evidence of the derived hits, by id (the first EVIDENCE_REFS of each)."""
    ids = list(dict.fromkeys(i for r in ranked for i in sources_of(r.row)[:EVIDENCE_REFS]))
    if not ids:
        return {}
    return {row["id"]: row for row in search_store.cube_refs(conn, tenant=tenant, cube_ids=ids)
            if row["status"] == "active"}


def _ref(row: dict[str, Any]) -> CubeRef:
    content = row["content"]
    return CubeRef(id=row["id"], kind=row["kind"], occurred_at=row.get("occurred_at"),
                   content=content if len(content) <= REF_CHARS else content[: REF_CHARS - 1] + "…")


def _hit(ranked: Ranked, plan: str, explain: bool, sources: dict[UUID, dict[str, Any]]) -> Hit:
    row = ranked.row
    detail = None
    if explain:
        distance = row["vector_distance"]
        detail = Explain(plan=plan, vector_rank=ranked.vector_rank,
                         vector_similarity=None if distance is None else 1.0 - float(distance),
                         text_rank=ranked.text_rank,
                         text_score=None if row["text_score"] is None else float(row["text_score"]),
                         text_own=bool(row.get("text_own")), rrf=ranked.rrf, lent=ranked.lent, relevance=ranked.relevance, recency=ranked.recency,
                         importance=float(row["importance"]))
    evidence = [_ref(sources[i]) for i in sources_of(row)[:EVIDENCE_REFS] if i in sources]
    fields = {k: row[k] for k in _ROW_FIELDS}
    # Candidates carry their metadata as text: only the hits returned pay for parsing it.
    fields["metadata"] = json.loads(row["metadata_json"])
    return Hit(score=ranked.score, explain=detail, derived=[_ref(d) for d in ranked.derived], evidence=evidence,
               **fields)


# The fields of a hit that a candidate row holds as they are.
_ROW_FIELDS = tuple(k for k in Hit.model_fields if k not in ("score", "metadata", "derived", "evidence", "explain"))
