"""Context assembly: core blocks, lessons, recalled memories and the working window, fitted to a token budget.

Fitting (a pure function, `fit_context`):
1. Core blocks go in whole: a budget smaller than they need is refused with the minimum. Then the cubes
   paging brought into core, each whole if it fits; nothing else comes before them.
2. The working window takes up to MEMCUBE_CONTEXT_WORKING_SHARE of what is left: the scratchpad, then
   messages from the newest back, without gaps.
3. Lessons, then recalled memories, best first, each whole if it fits.
4. What is still left goes on back through the window.

Token counts add up over whitespace (memcube.tokens), so a section costs its title plus its lines, and
the whole text costs the sum of its sections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import psycopg
import redis

from memcube import tokens, working
from memcube.access import AccessRecorder
from memcube.config import Settings
from memcube.embedder import Embedder
from memcube.errors import InvalidInput, NotFound
from memcube.lessons.serve import lessons_for_context
from memcube.models import (
    KINDS,
    Context,
    ContextItem,
    ContextRequest,
    ContextSection,
    Hit,
    Message,
    PagingMove,
    SearchRequest,
)
from memcube.paging import apply_paging
from memcube.search import SearchStats, search
from memcube.session import load_window, open_session
from memcube.store import core as core_store
from memcube.store.cubes import to_vector

log = logging.getLogger(__name__)

SECTIONS = ("core", "lessons", "recalled", "working")
TITLES = {"core": "# Core memory", "lessons": "# Lessons", "recalled": "# Recalled memories",
          "working": "# Working memory"}
# Recall searches every kind but lessons, which have their own section.
RECALL_KINDS = [k for k in KINDS if k != "procedural"]


@dataclass(frozen=True)
class Piece:
    """One line of a section: its text, its token count, and what it came from."""

    text: str
    tokens: int
    item: ContextItem | None = None


@dataclass(frozen=True)
class Candidates:
    blocks: Sequence[Piece] = ()  # labelled core blocks: all or nothing
    paged: Sequence[Piece] = ()  # cubes paged into core
    lessons: Sequence[Piece] = ()
    recalled: Sequence[Piece] = ()  # best first
    scratchpad: Piece | None = None
    messages: Sequence[Piece] = ()  # oldest first


@dataclass(frozen=True)
class Fitted:
    sections: dict[str, list[Piece]]  # each in display order
    tokens: dict[str, int]  # per section, title included; 0 for an empty section
    dropped: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.tokens.values())


@dataclass
class _Fill:
    left: int
    titles: Mapping[str, int]
    spent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    opened: set[str] = field(default_factory=set)

    def take(self, section: str, piece: Piece, cap: int | None = None) -> bool:
        cost = piece.tokens + (0 if section in self.opened else self.titles[section])
        if cost > self.left or (cap is not None and self.spent[section] + cost > cap):
            return False
        self.left -= cost
        self.spent[section] += cost
        self.opened.add(section)
        return True

    def take_run(self, section: str, pieces: Sequence[Piece], cap: int | None = None) -> int:
        """Take pieces in order until one does not fit; return how many were taken."""
        for n, piece in enumerate(pieces):
            if not self.take(section, piece, cap):
                return n
        return len(pieces)


def fit_context(candidates: Candidates, *, budget: int, working_share: float,
                title_tokens: Mapping[str, int]) -> Fitted:
    """Return what fits in `budget` tokens (see the module docstring); raises InvalidInput when the core
    blocks alone need more, with the minimum budget in the message and in details."""
    c = candidates
    minimum = title_tokens["core"] + sum(p.tokens for p in c.blocks) if c.blocks else 0
    if minimum > budget:
        raise InvalidInput(f"budget {budget} is smaller than the core blocks, which need {minimum} tokens; "
                           f"ask for a budget of at least {minimum}", details={"minimum": minimum})
    fill = _Fill(budget, title_tokens)
    taken = {"core": [p for p in c.blocks if fill.take("core", p)]}
    taken["core"] += [p for p in c.paged if fill.take("core", p)]
    cap = int(fill.left * working_share)
    newest_first = list(reversed(c.messages))
    pad = c.scratchpad is not None and fill.take("working", c.scratchpad, cap)
    n_messages = fill.take_run("working", newest_first, cap)
    taken["lessons"] = [p for p in c.lessons if fill.take("lessons", p)]
    taken["recalled"] = [p for p in c.recalled if fill.take("recalled", p)]
    pad = pad or (c.scratchpad is not None and fill.take("working", c.scratchpad))
    n_messages += fill.take_run("working", newest_first[n_messages:])
    taken["working"] = ([c.scratchpad] if pad and c.scratchpad else []) + newest_first[:n_messages][::-1]
    offered = {"core": len(c.blocks) + len(c.paged), "lessons": len(c.lessons), "recalled": len(c.recalled),
               "working": len(c.messages) + (c.scratchpad is not None)}
    return Fitted(sections=taken, tokens=dict(fill.spent), dropped={s: offered[s] - len(taken[s]) for s in SECTIONS})


def render(fitted: Fitted) -> tuple[dict[str, str], str]:
    """Return each section's text (empty when it has no lines) and the whole text."""
    texts = {s: "\n".join([TITLES[s], *(p.text for p in fitted.sections[s])]) if fitted.sections[s] else ""
             for s in SECTIONS}
    return texts, "\n\n".join(t for t in texts.values() if t)


class _KnownQuery:
    """The embedder, with the query's vector already computed: lessons and recall share one embedding."""

    def __init__(self, inner: Embedder, text: str, vector: list[float]) -> None:
        self.name, self.dim = inner.name, inner.dim
        self._inner, self._text, self._vector = inner, text, vector

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector if t == self._text else self._inner.embed([t])[0] for t in texts]


def _page_inline(conn: psycopg.Connection, client: redis.Redis, tenant: str, agent_id: str, user_id: str | None,
                 settings: Settings) -> list[PagingMove]:
    """Page the agent's scope (and the user's) if no run claimed it within MEMCUBE_PAGING_INTERVAL_SECONDS."""
    if settings.paging_interval_seconds <= 0:
        return []
    moves: list[PagingMove] = []
    for scope_user in dict.fromkeys([None, user_id]):
        key = working.paging_key(tenant, agent_id, scope_user)
        try:
            due = working.claim_paging(client, key, seconds=settings.paging_interval_seconds)
        except redis.RedisError as exc:
            log.warning("paging of agent %s skipped: Redis did not answer (%s)", agent_id, exc)
            continue
        if due:
            moves += apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=scope_user, settings=settings,
                                  actor="paging:context")
    return moves


def _core_rows(conn: psycopg.Connection, tenant: str, agent_id: str, user_id: str | None) -> list[dict[str, Any]]:
    rows = core_store.list_core(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, with_agent=True)
    # A user's block overrides the agent's block of the same label.
    mine = {r["label"] for r in rows if r["label"] is not None and r["user_id"] is not None}
    return [r for r in rows if not (r["label"] in mine and r["user_id"] is None)]


def _recall(conn: psycopg.Connection, tenant: str, request: ContextRequest, user_id: str | None,
            embedder: Embedder, window: Sequence[Message], settings: Settings, stats: SearchStats) -> list[Hit]:
    """Return up to MEMCUBE_CONTEXT_RECALL_K archival memories for the query, none already in the window."""
    if settings.context_recall_k == 0:
        return []
    shown_ids = {m.id for m in window}
    shown_texts = {m.content.strip() for m in window}
    k = min(settings.max_k, settings.context_recall_k + len(window))
    found = search(conn, tenant=tenant, embedder=embedder, settings=settings, stats=stats,
                   request=SearchRequest(agent_id=request.agent_id, user_id=user_id, query=request.query, k=k,
                                         tiers=["archival"], kinds=RECALL_KINDS,  # type: ignore[arg-type]
                                         include_shared=True))
    hits = [h for h in found.hits if h.id not in shown_ids and h.content.strip()
            and h.content.strip() not in shown_texts]
    return hits[:settings.context_recall_k]


def _pieces(core: list[dict[str, Any]], lessons: list[dict[str, Any]], hits: list[Hit], scratchpad: str,
            window: list[Message]) -> tuple[Candidates, dict[str, int]]:
    """Render every candidate line and count them all, with the section titles, in one call."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "blocks": [(f"[{r['label']}] {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"],
                                                       "label": r["label"]}) for r in core if r["label"]],
        "paged": [(f"- {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"]})
                  for r in core if not r["label"]],
        "lessons": [(f"- {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"],
                                            "score": r["score"]}) for r in lessons],
        "recalled": [(f"- [{(h.occurred_at or h.created_at).date().isoformat()}] {h.content}",
                      {"id": h.id, "kind": h.kind, "content": h.content, "score": h.score}) for h in hits],
        "scratchpad": [(f"Scratchpad: {scratchpad}", {"kind": "scratchpad", "content": scratchpad})]
        if scratchpad else [],
        "messages": [(f"{m.role} ({m.name}): {m.content}" if m.name else f"{m.role}: {m.content}",
                      {"id": m.id, "kind": "message", "content": m.content, "turn": m.turn, "role": m.role})
                     for m in window],
    }
    lines = [text for group in groups.values() for text, _ in group]
    counts = iter(tokens.count_many(lines + [TITLES[s] for s in SECTIONS]))
    # zip stops at the end of each group before taking a count, so the counts stay in step.
    pieces = {name: [Piece(text, n, ContextItem(tokens=n, **item)) for (text, item), n in zip(group, counts)]
              for name, group in groups.items()}
    titles = {s: next(counts) for s in SECTIONS}
    return Candidates(blocks=pieces["blocks"], paged=pieces["paged"], lessons=pieces["lessons"],
                      recalled=pieces["recalled"],
                      scratchpad=pieces["scratchpad"][0] if pieces["scratchpad"] else None,
                      messages=pieces["messages"]), titles


def assemble_context(conn: psycopg.Connection, client: redis.Redis, *, tenant: str, request: ContextRequest,
                     embedder: Embedder, settings: Settings, stats: SearchStats,
                     access: AccessRecorder | None) -> Context:
    """Return the context for an agent (and user, and session) under a token budget.

    Pages the scope first when due (MEMCUBE_PAGING_INTERVAL_SECONDS) and records an access of every lesson
    and recalled memory it includes. Raises NotFound for an unknown agent or session, InvalidInput when the
    budget is below what the core blocks need.
    """
    user_id, session = request.user_id, None
    if request.session_id is not None:
        session = open_session(conn, tenant=tenant, session_id=request.session_id, agent_id=request.agent_id,
                               user_id=request.user_id)
        user_id = session["user_id"]
    moves = _page_inline(conn, client, tenant, request.agent_id, user_id, settings)
    core = _core_rows(conn, tenant, request.agent_id, user_id)
    if not core and session is None and not core_store.agent_exists(conn, tenant=tenant, agent_id=request.agent_id):
        raise NotFound(f"agent {request.agent_id} not found")
    window: list[Message] = []
    if session is not None:
        window, _ = load_window(conn, client, tenant=tenant, session=session, settings=settings)
    vector = embedder.embed([request.query])[0]
    # Ranked by similarity × utility, served ones only; failure lessons read "Avoid: ...".
    lessons = lessons_for_context(conn, tenant=tenant, agent_id=request.agent_id, user_id=user_id,
                                  query_vector=to_vector(vector), settings=settings)
    hits = _recall(conn, tenant, request, user_id, _KnownQuery(embedder, request.query, vector), window, settings,
                   stats)
    candidates, titles = _pieces(core, lessons, hits, session["scratchpad"] if session else "", window)
    fitted = fit_context(candidates, budget=request.budget, working_share=settings.context_working_share,
                         title_tokens=titles)
    if access is not None:
        access.record([p.item.id for s in ("lessons", "recalled") for p in fitted.sections[s]
                       if p.item is not None and p.item.id is not None])
    texts, whole = render(fitted)
    sections = {s: ContextSection(text=texts[s], tokens=fitted.tokens[s], dropped=fitted.dropped[s],
                                  items=[p.item for p in fitted.sections[s] if p.item is not None]) for s in SECTIONS}
    return Context(agent_id=request.agent_id, user_id=user_id, session_id=request.session_id, budget=request.budget,
                   tokens=fitted.total, text=whole, sections=sections, paging=moves)
