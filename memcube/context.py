"""Context assembly: core blocks, lessons, recalled memories and the working window, fitted to a token budget.

Fitting (a pure function, `fit_context`):
1. Core blocks go in whole: a budget smaller than they need is refused with the minimum. Then the cubes
   paging brought into core, each whole if it fits; nothing else comes before them.
2. The working window takes up to MEMCUBE_CONTEXT_WORKING_SHARE of what is left: the scratchpad, then
   messages from the newest back, without gaps.
3. Lessons, then recalled memories, best first, each whole if it fits; a memory the working section
   already shows is not recalled again. Recalled memories are shown by day, oldest first, under one
   header line a day (paid for by the first memory of that day); a recalled message names its speaker.
4. What is still left goes on back through the window, past the messages recall already showed.

Recall asks search for as many memories as the budget could hold, and keeps only those that share a word with
the query (or whose neighbouring turn does), that a derived fact matching it stands for, or whose vector is at
least MEMCUBE_CONTEXT_MIN_SIMILARITY close: filler never takes room that nothing relevant needs. A memory
longer than MEMCUBE_CONTEXT_SNIPPET_TOKENS is shown as its sentences that share the most words with the
query, up to that length: the budget holds more memories, and each shows the part that answers. Session
summaries stay out, as in search's default (a summary of a whole session would crowd out the turns).

Token counts add up over whitespace (memcube.tokens), so a section costs its title plus its lines, and
the whole text costs the sum of its sections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import psycopg
import redis

from memcube import tokens
from memcube.access import AccessRecorder
from memcube.config import Settings
from memcube.embedder import Embedder
from memcube.errors import InvalidInput, NotFound
from memcube.lessons.serve import lessons_for_context
from memcube.models import (
    Context,
    ContextItem,
    ContextRequest,
    ContextSection,
    Hit,
    Message,
    SearchRequest,
)
from memcube.search import DEFAULT_KINDS, SearchStats, search
from memcube.session import load_window, open_session
from memcube.store import core as core_store
from memcube.store.cubes import to_vector
from memcube.text import split_sentences

SECTIONS = ("core", "lessons", "recalled", "working")
TITLES = {"core": "# Core memory", "lessons": "# Lessons", "recalled": "# Recalled memories",
          "working": "# Working memory"}
# Recall searches what search does by default, but lessons, which have their own section.
RECALL_KINDS = [k for k in DEFAULT_KINDS if k != "procedural"]
# The fewest tokens a recalled line costs (a date and a few words): recall asks for at most budget / this.
MIN_LINE_TOKENS = 15
_WORD = re.compile(r"\w+")
# Words too common to choose a sentence by.
_STOP = {"the", "and", "for", "you", "your", "are", "was", "were", "what", "when", "where", "who", "how", "why",
         "did", "does", "that", "this", "with", "have", "has", "had", "her", "his", "she", "him", "they", "them",
         "their", "from", "about", "which", "would", "could", "should", "will", "can", "not", "but", "any", "all"}


@dataclass(frozen=True)
class Piece:
    """One line of a section: its text, its token count, and what it came from; optionally the group it is
    shown under (a header line such as a day, paid for once by the first line of the group) and where it
    goes when the section is shown (lines are chosen best first, shown in this order)."""

    text: str
    tokens: int
    item: ContextItem | None = None
    group: str | None = None
    group_tokens: int = 0
    order: Any = None


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
    opened: set[Any] = field(default_factory=set)

    def take(self, section: str, piece: Piece, cap: int | None = None) -> bool:
        cost = piece.tokens + (0 if section in self.opened else self.titles[section])
        if piece.group is not None and (section, piece.group) not in self.opened:
            cost += piece.group_tokens
        if cost > self.left or (cap is not None and self.spent[section] + cost > cap):
            return False
        self.left -= cost
        self.spent[section] += cost
        self.opened.add(section)
        if piece.group is not None:
            self.opened.add((section, piece.group))
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
    shown = {_key(p) for p in newest_first[:n_messages]}
    taken["lessons"] = [p for p in c.lessons if fill.take("lessons", p)]
    taken["recalled"] = _display([p for p in c.recalled if _key(p) not in shown and fill.take("recalled", p)])
    pad = pad or (c.scratchpad is not None and fill.take("working", c.scratchpad))
    recalled = {_key(p) for p in taken["recalled"]}
    rest = [p for p in newest_first[n_messages:] if _key(p) not in recalled]
    more = fill.take_run("working", rest)
    taken["working"] = ([c.scratchpad] if pad and c.scratchpad else []) + (newest_first[:n_messages] + rest[:more])[::-1]
    offered = {"core": len(c.blocks) + len(c.paged), "lessons": len(c.lessons),
               "recalled": len(c.recalled) - sum(1 for p in c.recalled if _key(p) in shown),
               "working": len(c.messages) + (c.scratchpad is not None) - len(recalled & {_key(p) for p in c.messages})}
    return Fitted(sections=taken, tokens=dict(fill.spent), dropped={s: offered[s] - len(taken[s]) for s in SECTIONS})


def _display(pieces: list[Piece]) -> list[Piece]:
    """Return chosen lines in the order they are shown: by their `order` where they have one."""
    if not pieces or any(p.order is None for p in pieces):
        return pieces
    return sorted(pieces, key=lambda p: p.order)


def _lines(pieces: Sequence[Piece]) -> list[str]:
    """Return a section's lines, each group's header before its first line."""
    out, group = [], None
    for p in pieces:
        if p.group is not None and p.group != group:
            out.append(p.group)
        group = p.group
        out.append(p.text)
    return out


def _key(piece: Piece) -> Any:
    """What makes two lines the same memory: the cube, else the text (a message recalled as its cube)."""
    item = piece.item
    return ("id", item.id) if item is not None and item.id is not None else ("text", piece.text)


def render(fitted: Fitted) -> tuple[dict[str, str], str]:
    """Return each section's text (empty when it has no lines) and the whole text."""
    texts = {s: "\n".join([TITLES[s], *_lines(fitted.sections[s])]) if fitted.sections[s] else ""
             for s in SECTIONS}
    return texts, "\n\n".join(t for t in texts.values() if t)


class _KnownQuery:
    """The embedder, with the query's vector already computed: lessons and recall share one embedding."""

    def __init__(self, inner: Embedder, text: str, vector: list[float]) -> None:
        self.name, self.dim = inner.name, inner.dim
        self._inner, self._text, self._vector = inner, text, vector

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector if t == self._text else self._inner.embed([t])[0] for t in texts]


def _core_rows(conn: psycopg.Connection, tenant: str, agent_id: str, user_id: str | None) -> list[dict[str, Any]]:
    rows = core_store.list_core(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, with_agent=True)
    # A user's block overrides the agent's block of the same label.
    mine = {r["label"] for r in rows if r["label"] is not None and r["user_id"] is not None}
    return [r for r in rows if not (r["label"] in mine and r["user_id"] is None)]


def _recall(conn: psycopg.Connection, tenant: str, request: ContextRequest, user_id: str | None,
            embedder: Embedder, settings: Settings, stats: SearchStats) -> list[Hit]:
    """Return the archival memories relevant to the query, best first: as many as the budget could hold (up
    to MEMCUBE_CONTEXT_RECALL_K), none below the floor. Messages of the window may come back: fitting shows
    each memory once."""
    k = min(settings.max_k, settings.context_recall_k, max(10, request.budget // MIN_LINE_TOKENS))
    if settings.context_recall_k == 0:
        return []
    found = search(conn, tenant=tenant, embedder=embedder, settings=settings, stats=stats,
                   request=SearchRequest(agent_id=request.agent_id, user_id=user_id, query=request.query, k=k,
                                         tiers=["archival"], kinds=RECALL_KINDS,  # type: ignore[arg-type]
                                         derived="evidence", include_shared=True, explain=True))
    return [h for h in found.hits if h.content.strip() and relevant(h, settings.context_min_similarity)]


def relevant(hit: Hit, min_similarity: float) -> bool:
    """Whether a hit may take room in a context: it shares a word with the query (its own, or a turn's next
    to it: the question before an answer), a derived memory that matched stands for it, or its vector is
    close enough."""
    detail = hit.explain
    if detail is None or detail.text_score is not None or hit.derived:
        return True
    return detail.vector_similarity is not None and detail.vector_similarity >= min_similarity


def query_words(query: str) -> set[str]:
    """Return the words a snippet is chosen by: lower-cased, without stop words, cut to five letters (so that
    "painted" and "painting" meet)."""
    return {w[:5] for w in _WORD.findall(query.lower()) if w not in _STOP and len(w) > 1}


def snippet(text: str, words: set[str], max_tokens: int, count: Callable[[Sequence[str]], list[int]]) -> str:
    """Return `text` if it holds at most `max_tokens`; else its sentences that share the most query words,
    in their order, joined by " … ", up to `max_tokens`: the best sentence always, others only if they share
    a word with the query."""
    if max_tokens <= 0 or count([text])[0] <= max_tokens:
        return text
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return text
    sizes = count(sentences)
    shared = [len(words & {w[:5] for w in _WORD.findall(s.lower())}) for s in sentences]
    chosen: set[int] = set()
    total = 0
    for i in sorted(range(len(sentences)), key=lambda i: (-shared[i], i)):
        if chosen and (shared[i] == 0 or total + 1 + sizes[i] > max_tokens):
            continue
        total += sizes[i] + (1 if chosen else 0)  # " … " costs a token
        chosen.add(i)
    return " … ".join(sentences[i] for i in sorted(chosen))


def _moment(hit: Hit) -> Any:
    return hit.occurred_at or hit.created_at


def _speaker(hit: Hit) -> str:
    """Who said a recalled message ("Ana: ", "user: "); nothing for any other memory."""
    meta = hit.metadata or {}
    if hit.kind != "episodic" or "turn" not in meta:
        return ""
    who = meta.get("name") or meta.get("role")
    return f"{who}: " if isinstance(who, str) and who else ""


def _pieces(core: list[dict[str, Any]], lessons: list[dict[str, Any]], hits: list[Hit], scratchpad: str,
            window: list[Message], query: str, snippet_tokens: int) -> tuple[Candidates, dict[str, int]]:
    """Render every candidate line and count them all, with the section titles, in one call."""
    words = query_words(query)
    shown = [snippet(h.content, words, snippet_tokens, tokens.count_many) for h in hits]
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "blocks": [(f"[{r['label']}] {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"],
                                                       "label": r["label"]}) for r in core if r["label"]],
        "paged": [(f"- {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"]})
                  for r in core if not r["label"]],
        "lessons": [(f"- {r['content']}", {"id": r["id"], "kind": r["kind"], "content": r["content"],
                                            "score": r["score"]}) for r in lessons],
        "recalled": [(f"- {_speaker(h)}{text}", {"id": h.id, "kind": h.kind, "content": h.content,
                                                   "score": h.score}) for h, text in zip(hits, shown)],
        "scratchpad": [(f"Scratchpad: {scratchpad}", {"kind": "scratchpad", "content": scratchpad})]
        if scratchpad else [],
        "messages": [(f"{m.role} ({m.name}): {m.content}" if m.name else f"{m.role}: {m.content}",
                      {"id": m.id, "kind": "message", "content": m.content, "turn": m.turn, "role": m.role})
                     for m in window],
    }
    # Recalled memories are shown by day, under one header a day, oldest first.
    days = [f"[{_moment(h).date().isoformat()}]" for h in hits]
    headers = list(dict.fromkeys(days))
    lines = [text for group in groups.values() for text, _ in group]
    counts = iter(tokens.count_many(lines + [TITLES[s] for s in SECTIONS] + headers))
    # zip stops at the end of each group before taking a count, so the counts stay in step.
    pieces = {name: [Piece(text, n, ContextItem(tokens=n, **item)) for (text, item), n in zip(group, counts)]
              for name, group in groups.items()}
    titles = {s: next(counts) for s in SECTIONS}
    header_tokens = {h: next(counts) for h in headers}
    pieces["recalled"] = [Piece(p.text, p.tokens, p.item, group=day, group_tokens=header_tokens[day],
                                order=(_moment(h), str(h.id)))
                          for p, h, day in zip(pieces["recalled"], hits, days)]
    return Candidates(blocks=pieces["blocks"], paged=pieces["paged"], lessons=pieces["lessons"],
                      recalled=pieces["recalled"],
                      scratchpad=pieces["scratchpad"][0] if pieces["scratchpad"] else None,
                      messages=pieces["messages"]), titles


def assemble_context(conn: psycopg.Connection, client: redis.Redis, *, tenant: str, request: ContextRequest,
                     embedder: Embedder, settings: Settings, stats: SearchStats,
                     access: AccessRecorder | None) -> Context:
    """Return the context for an agent (and user, and session) under a token budget.

    Writes nothing (a read key may call it): it records an access of every lesson and recalled memory it
    includes, which background paging reads. Raises NotFound for an unknown agent or session, InvalidInput
    when the budget is below what the core blocks need.
    """
    user_id, session = request.user_id, None
    if request.session_id is not None:
        session = open_session(conn, tenant=tenant, session_id=request.session_id, agent_id=request.agent_id,
                               user_id=request.user_id)
        user_id = session["user_id"]
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
    hits = _recall(conn, tenant, request, user_id, _KnownQuery(embedder, request.query, vector), settings, stats)
    candidates, titles = _pieces(core, lessons, hits, session["scratchpad"] if session else "", window,
                                 request.query, settings.context_snippet_tokens)
    fitted = fit_context(candidates, budget=request.budget, working_share=settings.context_working_share,
                         title_tokens=titles)
    if access is not None:
        access.record([p.item.id for s in ("lessons", "recalled") for p in fitted.sections[s]
                       if p.item is not None and p.item.id is not None])
    texts, whole = render(fitted)
    sections = {s: ContextSection(text=texts[s], tokens=fitted.tokens[s], dropped=fitted.dropped[s],
                                  items=[p.item for p in fitted.sections[s] if p.item is not None]) for s in SECTIONS}
    return Context(agent_id=request.agent_id, user_id=user_id, session_id=request.session_id, budget=request.budget,
                   tokens=fitted.total, text=whole, sections=sections)
