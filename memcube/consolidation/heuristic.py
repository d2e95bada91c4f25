"""The heuristic engine: consolidation without an LLM, deterministic, so it works offline.

Extraction finds first-person statements with fixed patterns ("I live in", "I moved to", "I work at",
"my X is", "I love/hate/prefer", "I have a", ...) and turns each into a third-person fact with an attribute.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from memcube.consolidation.ledger import Candidate, Decision, Episode, Fact

if TYPE_CHECKING:
    from memcube.consolidation.engine import Context

# Roles whose words are not facts about the user.
NON_USER_ROLES = {"assistant", "system", "tool", "agent", "function"}

_ADVERBS = (r"(?:(?:really|still|actually|just|recently|finally|now|always|also|definitely|totally|absolutely|"
            r"honestly|generally|usually|currently|truly|kind of|sort of|do|genuinely)\s+)*")
_VALUE = r"(?P<value>[^.,;!?\n()]{1,80}?)"
# A value ends at punctuation, at the end, or before a clause that starts something else.
_END = (r"(?=\s*(?:[.,;!?\n()]|$)|\s+(?:because|since|but|and then|so that|which|where|when|if|though|although|"
        r"while|as well as|who|whom|after|before|until|for|with|in|at|on|from|to|near|during|by|last|next|"
        r"every)\b)")
_I_AM = r"\bI(?:'m|\s+am)\s+"


@dataclass(frozen=True)
class Pattern:
    attribute: str
    regex: re.Pattern[str]
    template: str


def _p(attribute: str, body: str, template: str) -> Pattern:
    return Pattern(attribute, re.compile(body + _END, re.IGNORECASE), template)


# One value at a time: a new value supersedes the old one.
ONE_VALUED = {"lives_in", "works_at", "occupation", "name", "age", "from", "partner"}
# Several values side by side.
MANY_VALUED = {"has", "allergic_to"}
OPINION = "opinion"

PATTERNS = [
    _p("lives_in", r"\bI\s+" + _ADVERBS + r"(?:live|reside)\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("lives_in", _I_AM + _ADVERBS + r"(?:living|residing|based|settled)\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("lives_in", r"\bI(?:'ve|\s+have)?\s+" + _ADVERBS + r"(?:moved|relocated)\s+(?:back\s+)?to\s+" + _VALUE,
       "{s} lives in {v}"),
    _p("lives_in", r"\bmy\s+(?:home|house|apartment|flat)\s+is\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("occupation", r"\bI\s+" + _ADVERBS + r"(?:work|am working|'m working)\s+as\s+(?:an?\s+)?" + _VALUE,
       "{s} works as {a} {v}"),
    _p("works_at", r"\bI\s+" + _ADVERBS + r"(?:work|am working|'m working)\s+(?:at|for)\s+" + _VALUE,
       "{s} works at {v}"),
    _p("works_at", r"\bI(?:'ve|\s+have)?\s+" + _ADVERBS + r"(?:started|begun)\s+(?:working|a new job)\s+(?:at|for)\s+"
       + _VALUE, "{s} works at {v}"),
    _p("name", r"\bmy\s+name\s+is\s+" + _VALUE, "{sp} name is {v}"),
    _p("name", r"\bcall\s+me\s+" + _VALUE, "{sp} name is {v}"),
    _p("age", _I_AM + r"(?P<value>\d{1,3})(?:\s+years?\s+old|\s+yo)", "{s} is {v} years old"),
    _p("from", _I_AM + _ADVERBS + r"(?:originally\s+)?from\s+" + _VALUE, "{s} is from {v}"),
    _p("partner", _I_AM + _ADVERBS + r"(?:married|engaged)\s+to\s+" + _VALUE, "{s} is married to {v}"),
    _p("allergic_to", _I_AM + _ADVERBS + r"allergic\s+to\s+" + _VALUE, "{s} is allergic to {v}"),
    _p("has", r"\bI\s+" + _ADVERBS + r"(?:have|'ve got|have got)\s+(?P<count>an?|one|two|three|four|five|\d+)\s+"
       + _VALUE, "{s} has {c} {v}"),
    _p(OPINION, r"\bI\s+" + _ADVERBS + r"(?P<verb>like|love|adore|enjoy|prefer|hate|dislike|detest|can't stand|"
       r"cannot stand|don't like|do not like|don't enjoy|do not enjoy)\s+" + _VALUE, "{s} {verb} {v}"),
]
# "my favourite colour is green", "my sister's name is Ana": the key becomes the attribute.
MY_X_IS = re.compile(r"\bmy\s+(?P<key>[a-z][a-z' ]{1,40}?)\s+(?:is|are)\s+" + _VALUE + _END, re.IGNORECASE)
MY_X_SKIP = {"name", "bad", "gosh", "god", "goodness", "life", "heart", "head", "advice", "plan"}
# "my biggest problem is", "my main point is": the last word of the key says it is not a fact.
MY_X_SKIP_LAST = {"point", "guess", "problem", "question", "concern", "fault", "pleasure", "turn", "mind", "feeling",
                  "impression", "idea", "thing", "hope", "day", "week", "worry", "fear", "bet"}

_VERBS = {"like": "likes", "love": "loves", "adore": "adores", "enjoy": "enjoys", "prefer": "prefers",
          "hate": "hates", "dislike": "dislikes", "detest": "detests", "can't stand": "can't stand",
          "cannot stand": "can't stand", "don't like": "doesn't like", "do not like": "doesn't like",
          "don't enjoy": "doesn't enjoy", "do not enjoy": "doesn't enjoy"}
_NEGATIVE = {"hate", "dislike", "detest", "can't stand", "cannot stand", "don't like", "do not like", "don't enjoy",
             "do not enjoy"}
# Objects that make "I like X" about the conversation rather than a preference.
_VAGUE_OBJECTS = {"it", "that", "this", "them", "you", "him", "her", "how", "what", "when", "where", "why", "who",
                  "so", "too", "the idea", "the way", "your", "yours", "these", "those"}
_VAGUE_HAS = {"question", "feeling", "idea", "lot", "few", "bit", "chance", "good", "great", "hard", "quick",
              "minute", "moment", "second", "look", "problem", "meeting", "favor", "favour", "point", "busy"}
_TRAILING = re.compile(r"\s+(?:now|these days|at the moment|right now|recently|lately|again|too|as well|"
                       r"last (?:week|month|year|night)|this (?:week|month|year)|yesterday|today|anymore|"
                       r"any more|a lot|so much|very much)$", re.IGNORECASE)
_STOP = {"a", "an", "the", "my", "our", "your", "some", "really", "very", "to", "of", "in", "on", "for", "with",
         "when", "i", "at", "by", "and", "or", "over", "than", "just", "all", "any", "much", "more", "most", "it"}
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


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


def _clean_value(value: str) -> str | None:
    value = value.strip().strip("\"'")
    while True:
        trimmed = _TRAILING.sub("", value).strip()
        if trimmed == value:
            break
        value = trimmed
    if not value or len(value.split()) > 10:
        return None
    return value


def _subject(episode: Episode) -> tuple[str, str]:
    """Return how a fact names the speaker, and its possessive: ("Ana", "Ana's") or ("The user", "The user's")."""
    name = episode.speaker
    if not name or name.lower() in ("user", "human", "me"):
        return "The user", "The user's"
    return name, f"{name}'" if name.endswith("s") else f"{name}'s"


def extract_facts(episode: Episode) -> list[Candidate]:
    """Return the facts a user's episode states about its speaker, in order of appearance."""
    if not episode.active or episode.role in NON_USER_ROLES:
        return []
    subject, possessive = _subject(episode)
    found: list[Candidate] = []
    for sentence in _SENTENCE.split(episode.content):
        # (start, end, candidate) of this sentence; a span one pattern took is not read again by another.
        taken: list[tuple[int, int, Candidate]] = []
        for pattern in PATTERNS:
            for match in pattern.regex.finditer(sentence):
                if any(start <= match.start() < end for start, end, _ in taken):
                    continue
                candidate = _candidate(pattern, match, subject, possessive, episode)
                if candidate is not None:
                    taken.append((*match.span(), candidate))
        for match in MY_X_IS.finditer(sentence):
            key = " ".join(match.group("key").lower().split())
            value = _clean_value(match.group("value"))
            if value is None or key in MY_X_SKIP or key.split()[-1] in MY_X_SKIP_LAST or \
                    any(start <= match.start() < end for start, end, _ in taken):
                continue
            taken.append((*match.span(), Candidate(content=f"{possessive} {key} is {value}", evidence=[episode],
                                                   attribute=f"my:{key}", value=value)))
        found.extend(candidate for _, _, candidate in sorted(taken, key=lambda item: item[0]))
    return found


def _candidate(pattern: Pattern, match: re.Match[str], subject: str, possessive: str,
               episode: Episode) -> Candidate | None:
    value = _clean_value(match.group("value"))
    if value is None:
        return None
    groups = match.groupdict()
    polarity = None
    verb = ""
    if pattern.attribute == OPINION:
        verb = groups["verb"].lower()
        if value.lower() in _VAGUE_OBJECTS or value.split()[0].lower() in _VAGUE_OBJECTS:
            return None
        polarity = "-" if verb in _NEGATIVE else "+"
    if pattern.attribute == "has" and (not words(value) or words(value)[0] in _VAGUE_HAS):
        return None
    article = "an" if value[:1].lower() in "aeiou" else "a"
    content = pattern.template.format(s=subject, sp=possessive, v=value, verb=_VERBS.get(verb, verb),
                                      c=groups.get("count") or "", a=article)
    return Candidate(content=" ".join(content.split()), evidence=[episode], attribute=pattern.attribute,
                     value=value, polarity=polarity)


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
        sentence = max(_SENTENCE.split(episode.content), key=lambda s: len(words(s)), default="").strip()
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
