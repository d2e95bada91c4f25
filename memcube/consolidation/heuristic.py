"""The heuristic engine: consolidation without an LLM, deterministic, so it works offline.

Extraction (extract.py) finds first-person statements with fixed patterns ("I live in", "I moved to", "I work
at", "my X is", "I love/hate/prefer", "I have a", ...) and turns each into a third-person fact with an attribute.
Decisions compare a candidate with the scope's facts by attribute and value, then by embedding similarity:
- one-valued attributes (where someone lives, works, their name, "my X is"): the same value restated is
  unchanged (or an update when the candidate says more), a new value supersedes the old fact;
- opinions (like, love, prefer, hate, ...): about the same thing, the same polarity is a restatement and the
  opposite polarity supersedes; about another thing, a new fact;
- many-valued attributes (has, allergic to): the same value is a restatement, another value a new fact;
- a candidate within the duplicate similarity of a fact without an attribute is a restatement.
Summaries are extractive: the session's most informative sentences, in order.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator, Sequence

from memcube.consolidation.extract import MANY_VALUED, OPINION, extract_facts
from memcube.consolidation.ledger import Candidate, Decision, Episode, Fact
from memcube.text import split_sentences

if TYPE_CHECKING:
    from memcube.consolidation.engine import Context

_STOP = {"a", "an", "the", "my", "our", "your", "some", "really", "very", "to", "of", "in", "on", "for", "with",
         "when", "i", "at", "by", "and", "or", "over", "than", "just", "all", "any", "much", "more", "most", "it"}
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Return the content words of a text, lower-cased, singular-ish, in order."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def values_match(a: str | None, b: str | None) -> bool:
    """Whether two values name the same thing: the same first content word, and most words shared."""
    wa, wb = words(a or ""), words(b or "")
    if not wa or not wb:
        return (a or "").strip().lower() == (b or "").strip().lower()
    if wa[0] != wb[0]:
        return False
    shared = len(set(wa) & set(wb))
    return shared / min(len(set(wa)), len(set(wb))) >= 0.6


def says_more(candidate: str, fact: str) -> bool:
    """Whether a candidate holds every content word of a fact and more."""
    wc, wf = set(words(candidate)), set(words(fact))
    return bool(wf) and wf < wc


def decide(candidate: Candidate, neighbours: Sequence[tuple[Fact, float]], *,
           duplicate_similarity: float) -> Decision:
    """Decide what a candidate does to the facts it was compared with (closest first)."""
    for fact, similarity in neighbours:
        if fact.status != "active":
            continue
        if candidate.attribute and fact.attribute == candidate.attribute:
            decision = _same_attribute(candidate, fact)
            if decision is not None:
                return decision
        elif similarity >= duplicate_similarity and not (candidate.attribute and fact.attribute):
            return _restated(candidate, fact, f"{similarity:.2f} similar")
    return Decision("add", candidate)


def _same_attribute(candidate: Candidate, fact: Fact) -> Decision | None:
    attribute = candidate.attribute or ""
    if attribute == OPINION:
        if not values_match(candidate.value, fact.value):
            return None
        if candidate.polarity == fact.polarity:
            return _restated(candidate, fact, "same opinion")
        return Decision("supersede", candidate, fact, "opposite opinion")
    if attribute in MANY_VALUED:
        return _restated(candidate, fact, "same value") if values_match(candidate.value, fact.value) else None
    # One-valued: every other attribute, including "my:<key>".
    if values_match(candidate.value, fact.value):
        return _restated(candidate, fact, "same value")
    return Decision("supersede", candidate, fact, f"new {attribute.removeprefix('my:')}")


def _restated(candidate: Candidate, fact: Fact, why: str) -> Decision:
    if says_more(candidate.content, fact.content):
        return Decision("update", candidate, fact, f"{why}, more detail")
    return Decision("unchanged", candidate, fact, f"restated ({why})")


# --- summaries ---------------------------------------------------------------------------------------------------

SUMMARY_POINTS = 6
SUMMARY_MAX_CHARS = 1200


def summary_points(episodes: Sequence[Episode], facts_from: set[object]) -> list[str]:
    """Return up to SUMMARY_POINTS sentences that say the most, in the order they were said: sentences that
    gave a fact first, then the longest; never greetings or short replies (under three content words)."""
    scored: list[tuple[float, int, str]] = []
    for index, episode in enumerate(episodes):
        if not episode.active:
            continue
        sentence = max(split_sentences(episode.content), key=lambda s: len(words(s)), default="").strip()
        n = len(words(sentence))
        if n < 3:
            continue
        who = episode.speaker or (episode.role.capitalize() if episode.role else None)
        line = f"{who}: {sentence}" if who else sentence
        scored.append(((10.0 if episode.id in facts_from else 0.0) + min(n, 25), index, line[:300]))
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:SUMMARY_POINTS]
    return [line for _, _, line in sorted(best, key=lambda s: s[1])]


def summarize(session_id: str, episodes: Sequence[Episode], previous: dict | None,
              facts_from: set[object]) -> tuple[str, dict]:
    """Return (content, data) of a session's summary, extending the previous one's points."""
    points = list((previous or {}).get("points") or []) + summary_points(episodes, facts_from)
    total = int((previous or {}).get("episodes") or 0) + len(episodes)
    first = (previous or {}).get("first_at") or min(e.at for e in episodes).date().isoformat()
    last = max(e.at for e in episodes).date().isoformat()
    span = first if first == last else f"{first} to {last}"
    head = f"Session {session_id}, {span}, {total} messages."
    while points and len(head) + sum(len(p) + 1 for p in points) > SUMMARY_MAX_CHARS:
        points.pop(0)
    content = " ".join([head, *points])
    return content, {"points": points, "episodes": total, "first_at": first, "last_at": last}


class HeuristicEngine:
    """Consolidation by patterns and similarity: no LLM, the same answer every time."""

    name = "heuristic"
    model: str | None = None
    prompt_version: str | None = None
    summary_prompt_version: str | None = None

    def __init__(self, *, duplicate_similarity: float) -> None:
        self._duplicate = duplicate_similarity

    def decide(self, group: Sequence[Episode], context: Context) -> Iterator[Decision]:
        candidates = [c for episode in group for c in extract_facts(episode)]
        if not candidates:
            return
        for candidate, vector in zip(candidates, context.embed([c.content for c in candidates])):
            candidate.vector = vector
            neighbours = context.neighbours(candidate.vector, attribute=candidate.attribute)
            yield decide(candidate, neighbours, duplicate_similarity=self._duplicate)

    def summarize(self, session_id: str, episodes: Sequence[Episode], previous: dict | None,
                  facts_from: set[object]) -> tuple[str, dict]:
        return summarize(session_id, episodes, previous["data"] if previous else None, facts_from)
