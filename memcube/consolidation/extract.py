"""Facts a user states about themselves, read with fixed patterns: the heuristic engine's extraction.

First-person statements ("I live in", "I moved to", "I work at", "my X is", "I love/hate/prefer", "I have a",
"I'm allergic to", ...) become third-person facts with an attribute and a value. Precision comes first: a
statement the patterns cannot read with confidence gives nothing. So:
- dots of abbreviations, emails, URLs and numbers neither end a sentence nor a value (text.protect);
- a value ends at punctuation, at a preposition or conjunction that starts something else, or where a new
  clause begins ("... Priya Sharma | and I live in Berlin");
- names, places, employers and partners are proper nouns: a run of capitalised words ("I live in fear" is
  not a place), unless the writer does not use capitals at all; a coordination of two names that may be one
  ("Procter and Gamble", "Berlin or Potsdam") gives nothing;
- "allergic to" is a fact only with an allergen ("allergic to waiting" is a figure of speech);
- nothing is read from a question, a clause after a negation or a hedge ("I never said I live in Rome",
  "my friend thinks I live in London"), quoted speech, or a sarcastic sentence ("I love my job, said no
  one ever"); an aside that takes it back ("..., I think", "... anymore") drops it too;
- "my X is Y" is read for keys that name data (email, phone number, birthday, favourite things, "my
  sister's name") with a value of the right shape, and for other keys only when Y names something
  ("my car is a 2015 Honda Civic", "my doctor is Dr. Patel"), never a state ("my phone is dying").
values.py gives each attribute's value its shape; lexicon.py holds the words they read with. Measured on
hand-written statements by `python -m bench.facts` (tests/memcube/consolidation/fact_corpus.jsonl).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from memcube.consolidation import lexicon, values
from memcube.consolidation.ledger import Candidate, Episode
from memcube.text import case_tells, clause_start, normalise_quotes, protect, sentences, unmask

# Roles whose words are not facts about the user.
NON_USER_ROLES = {"assistant", "system", "tool", "agent", "function"}

# One value at a time: a new value supersedes the old one.
ONE_VALUED = {"lives_in", "works_at", "occupation", "name", "age", "from", "partner"}
# Several values side by side.
MANY_VALUED = {"has", "allergic_to"}
OPINION = "opinion"

_ADVERBS = (r"(?:(?:really|still|actually|just|recently|finally|now|always|also|definitely|totally|absolutely|"
            r"honestly|generally|usually|currently|truly|kind of|sort of|do|genuinely|deathly|severely|highly|very|"
            r"mildly|slightly|extremely|seriously|super|so|quite|officially|happily|proudly)\s+)*")
_VALUE = r"(?P<value>[^.,;!?\n()\"]{1,80}?)"
# A new clause: a coordinator, then a subject.
_NEW_CLAUSE = (r"\s+(?:and|or|so|&)\s+(?:I|I'm|I've|I'd|I'll|im|my|we|we're|we've|it|it's|this|that|he|she|"
               r"they|you|there|me)\b")
# A value ends at punctuation, at the end, before a clause that starts something else, or before a new clause.
_BREAK = r"\s*(?:[.,;!?\n()\"]|:\s|$)|\s*[-\u2013\u2014]+\s"
_END = (r"(?=" + _BREAK + r"|" + _NEW_CLAUSE + r"|\s+(?:because|since|but|and then|so that|which|where|"
        r"when|if|though|although|while|as well as|who|whom|after|before|until|for|with|in|at|on|from|to|near|"
        r"during|by|last|next|every|as|cause|cuz)\b)")
# "my X is Y": Y runs to the end of its clause (it may hold prepositions: "to live in Paris"); so does an
# opinion's object that a preposition would leave without its complement ("listening| to Nils Frahm").
_CLAUSE_END = (r"(?=" + _BREAK + r"|" + _NEW_CLAUSE + r"|\s+(?:because|since|but|if|when|which|who|while|"
               r"although|though|unless|whereas|cause|cuz)\b)")
_I = r"\bI(?:\s+|(?='))"
_I_AM = r"\b(?:I'm|I\s+am|im)\s+"
_I_HAVE = r"\bI(?:'ve|\s+have)\s+"

_FLAGS = re.IGNORECASE


@dataclass(frozen=True)
class Pattern:
    attribute: str
    # Words one of which a sentence must hold (lower-cased) for the regex to be worth running: most hold none.
    keys: tuple[str, ...]
    regex: re.Pattern[str]
    template: str


def _p(attribute: str, keys: tuple[str, ...], body: str, template: str, end: str = _END) -> Pattern:
    return Pattern(attribute, keys, re.compile(body + end, _FLAGS), template)


_LIKES = ("like", "love", "adore", "enjoy", "prefer", "hate", "dislike", "detest", "loathe", "stand")
_DIGITS = tuple("0123456789")
_LIVES, _WORKS_AT, _WORKS_AS = "{s} lives in {v}", "{s} works at {v}", "{s} works as {a} {v}"
_NAME, _AGE = "{sp} name is {v}", "{s} is {v} years old"
_STILL = r"(?=\s+(?:for|since)\s)"  # "I've lived in Tokyo for three years": still true; "I've lived in Tokyo": not
PATTERNS = [
    _p("lives_in", ("live", "resid"), _I + _ADVERBS + r"(?:live|reside)\s+in\s+" + _VALUE, _LIVES),
    _p("lives_in", ("living", "residing", "based", "settled"),
       _I_AM + _ADVERBS + r"(?:living|residing|based|settled)\s+in\s+" + _VALUE, _LIVES),
    _p("lives_in", ("moved", "relocated"),
       r"\b(?:I|we)(?:'ve|\s+have)?\s+" + _ADVERBS + r"(?:moved|relocated)\s+(?:back\s+)?to\s+" + _VALUE, _LIVES),
    _p("lives_in", ("live", "living", "based"),
       r"\bwe(?:'re|\s+are)?\s+" + _ADVERBS + r"(?:live|living|based)\s+in\s+" + _VALUE, _LIVES),
    _p("lives_in", ("moved", "relocated"),
       r"^(?:(?:just|finally|recently)\s+)?(?:moved|relocated)\s+to\s+" + _VALUE, _LIVES),
    _p("lives_in", ("lived",), _I_HAVE + _ADVERBS + r"lived\s+in\s+" + _VALUE, _LIVES, _STILL),
    _p("lives_in", ("home", "house", "apartment", "flat"),
       r"\bmy\s+(?:home|house|apartment|flat)\s+is\s+in\s+" + _VALUE, _LIVES),
    _p("occupation", ("work",),
       _I + _ADVERBS + r"(?:work|am working|'m working)\s+as\s+(?P<article>an?)\s+" + _VALUE, _WORKS_AS),
    _p("occupation", ("working",), _I_HAVE + r"been\s+working\s+as\s+(?P<article>an?)\s+" + _VALUE, _WORKS_AS),
    _p("occupation", ("'m a", "'m an", " am a", "im a"),
       _I_AM + r"(?:now\s+)?(?P<article>an?)\s+(?P<job>(?:[\w-]+\s+){0,2}[\w-]+)(?P<value>)", _WORKS_AS),
    _p("works_at", ("work",), _I + _ADVERBS + r"(?:work|am working|'m working)\s+(?:at|for)\s+" + _VALUE, _WORKS_AT),
    _p("works_at", ("started", "begun", "began"), r"\bI(?:'ve|\s+have)?\s+" + _ADVERBS
       + r"(?:started|begun|began)\s+(?:working|a new job)\s+(?:at|for)\s+" + _VALUE, _WORKS_AT),
    _p("works_at", ("worked", "working"),
       _I_HAVE + _ADVERBS + r"(?:worked|been working)\s+(?:at|for)\s+" + _VALUE, _WORKS_AT, _STILL),
    _p("name", ("name",), r"\bmy\s+name(?:\s+is|'s)\s+" + _VALUE, _NAME),
    _p("name", ("call me",), r"\bcall\s+me\s+" + _VALUE, _NAME),
    _p("name", ("hi", "hello", "hey"),
       r"\b(?:hi|hello|hey|hiya)(?:\s+there)?[,!]?\s+(?:I'm|I\s+am)\s+" + _VALUE, _NAME),
    _p("name", ("by the way", "btw", "here"), r"^(?:I'm|I\s+am)\s+" + _VALUE, _NAME,
       r"(?=\s*,?\s+(?:by the way|btw|here)\b)"),
    _p("age", _DIGITS, _I_AM + r"(?P<value>\d{1,3})(?:\s+years?\s+old|\s*yo|\s*y/o)?", _AGE,
       r"(?=\s*(?:[,;!?]|\.|$)|\s+(?:and|but|now|btw|so)\b)"),
    _p("age", ("turned",), _I + r"(?:just\s+)?turned\s+(?P<value>\d{1,3})", _AGE,
       r"(?=\s*(?:[,;!?]|\.|$)|\s+(?:last|this|yesterday|today|on|in|and|but)\b)"),
    _p("from", ("from",), _I_AM + _ADVERBS + r"(?:originally\s+)?from\s+" + _VALUE, "{s} is from {v}"),
    _p("from", ("come from",), _I + _ADVERBS + r"(?:originally\s+)?come\s+from\s+" + _VALUE, "{s} is from {v}"),
    _p("partner", ("married", "engaged"),
       _I_AM + _ADVERBS + r"(?P<verb>married|engaged)\s+to\s+" + _VALUE, "{s} is {verb} to {v}"),
    _p("partner", ("married", "engaged"),
       _I_HAVE + r"been\s+(?P<verb>married|engaged)\s+to\s+" + _VALUE, "{s} is {verb} to {v}"),
    _p("allergic_to", ("allergic",), _I_AM + _ADVERBS + r"allergic\s+to\s+" + _VALUE, "{s} is allergic to {v}"),
    _p("has", ("have", "'ve got"), _I + _ADVERBS + r"(?:have|'ve got|have got)\s+"
       r"(?P<count>an?|one|two|three|four|five|six|\d+)\s+" + _VALUE, "{s} has {c} {v}"),
    _p(OPINION, _LIKES, _I + _ADVERBS + r"(?P<verb>like|love|adore|enjoy|prefer|hate|dislike|detest|loathe|"
       r"can't stand|cannot stand|can not stand|(?:don't|dont|do not)\s+(?:really\s+|particularly\s+|actually\s+|"
       r"much\s+)?(?:like|enjoy|love))\s+" + _VALUE, "{s} {verb} {v}"),
    _p(OPINION, ("fan",), _I_AM + r"(?:(?P<verb>not|no)\s+)?(?:an?\s+)?(?:(?:big|huge|great|massive|real|total)\s+)?"
       r"fan\s+of\s+" + _VALUE, "{s} {verb} {v}"),
]
# After a first-person statement, the same speaker goes on without "I": "I live in Madrid and work at Telefónica",
# "I love cooking, hate cleaning". The bare verb ("work", not "works") keeps the subject the speaker. ("like"
# is left out: after a comma it is as often "such as".)
_GOES_ON = r"(?:,\s*|\s+and\s+|\s+but\s+)(?:(?:also|now|currently|really|totally|absolutely)\s+)?"
ELIDED = [
    _p("works_at", ("work",), _GOES_ON + r"work\s+(?:at|for)\s+" + _VALUE, _WORKS_AT),
    _p("lives_in", ("live",), _GOES_ON + r"live\s+in\s+" + _VALUE, _LIVES),
    _p(OPINION, _LIKES, _GOES_ON + r"(?P<verb>love|adore|enjoy|prefer|hate|dislike|detest|loathe)\s+" + _VALUE,
       "{s} {verb} {v}"),
]
_TO_CLAUSE_END = re.compile(_VALUE + _CLAUSE_END, _FLAGS)
# "my favourite colour is green", "my sister's name is Ana": the key becomes the attribute.
MY_X_IS = re.compile(r"\bmy\s+(?P<key>[a-z][\w'-]*(?:\s+[\w'-]+){0,3}?)\s+(?:is|are|'s)\s+" + _VALUE + _CLAUSE_END,
                     _FLAGS)
_FAVOURITE = re.compile(r"^(?:least\s+)?(?:favou?rite|fave|fav)\b")

_VERBS = {"like": "likes", "love": "loves", "adore": "adores", "enjoy": "enjoys", "prefer": "prefers",
          "hate": "hates", "dislike": "dislikes", "detest": "detests", "loathe": "loathes",
          "can't stand": "can't stand", "cannot stand": "can't stand", "can not stand": "can't stand",
          "": "is a fan of", "not": "is not a fan of", "no": "is not a fan of"}
_NEGATIVE = {"hate", "dislike", "detest", "loathe", "can't stand", "cannot stand", "can not stand", "not", "no"}
# Sarcasm says the opposite of the words: nothing is read from such a sentence.
_SARCASM = re.compile(r"\b(?:said no ?(?:one|body)|yeah,? right|oh,? (?:great|joy|wonderful|fantastic|"
                      r"lovely|perfect)|just what i needed|lucky me|just kidding|kidding|jk)\b|/s\b|\bnot!",
                      re.IGNORECASE)
# "I just love getting spam calls": delight in a nuisance is said the other way round.
_IRONIC = re.compile(r"\b(?:wow|gee|great|oh)\b.*\bjust\s+(?:love|adore|enjoy)\b|"
                     r"\bjust\s+(?:love|adore)\s+(?:being|getting|having to|waiting|dealing with|when)\b",
                     re.IGNORECASE)
_TAKEN_BACK = re.compile(r"^\s*(?:not|nope|not really|as if|yeah right)[.!]*$", re.IGNORECASE)
# A negation, hedge or condition before a statement in its clause makes it not a statement of fact.
_HEDGE = re.compile(r"\b(?:not|never|no|nor|if|whether|maybe|perhaps|might|would|could|should|think|thinks|"
                    r"thought|guess|wonder|wonders|wish|wishes|wished|hope|hopes|imagine|suppose|supposing|pretend|"
                    r"pretends|pretending|unless|when|once|until|dream|dreams|dreamt|dreamed|someday|probably|"
                    r"apparently|supposedly|used|assume|assumes|believes|claims|rumou?r|lie|lied|lying|fake|"
                    r"joke|joking|kidding)\b|n't\b|\b(?:dont|didnt|doesnt|cant|wont|isnt|wasnt|aint|havent)\b",
                    re.IGNORECASE)
# An aside right after a statement that takes it back or hedges it.
_AFTER = re.compile(r"\s*,?\s*(?:I think|I guess|I suppose|I believe|I'm not sure|maybe|probably|perhaps|or not|"
                    r"or something|anymore|any more|no more|jk|just kidding|as (?:[\w']+\s+){0,3}(?:says?|said|goes|"
                    r"puts it))\b", re.IGNORECASE)
# "a job I enjoy every day", "the thing I love is": the statement describes a noun before it (a relative
# clause), it is not about the speaker.
_RELATIVE = re.compile(r"(?:\b(?:a|an|the|this|that|every|each|some|any|one|no)\s+[\w'-]+|\b(?:something|anything|"
                       r"everything|nothing|someone|anyone|everyone|somewhere|stuff|things|what)\s*)\s+$",
                       re.IGNORECASE)
# "Finding my Zen is", "I talked to my friend who is": "my X" that does not start its clause is not its subject.
_MY_LEAD = re.compile(r"^(?:(?:well|oh|ok|okay|so|and|but|also|actually|honestly|btw|yeah|yes|hey|hi|hello|now|"
                      r"anyway|plus|though)\b\W*)*$", re.IGNORECASE)
# "One of my favourite dishes is lasagna": one among several, not the value of an attribute.
_ONE_OF = re.compile(r"\b(?:one|two|three|some|all|most|both|many|few|any|none|each)\s+of\s+$", re.IGNORECASE)
# "allergic to animals with fur": what follows narrows the value, which alone would say too much.
_NARROWED = re.compile(r"\s+(?:with|from|in|of|that|which|who|except)\b", re.IGNORECASE)
_QUESTION_START = re.compile(r"^(?:do|does|did|am|is|are|was|were|can|could|would|should|will|shall|have|has|had|"
                             r"what|why|how|where|when|who|whom|which|whose|isn't|aren't|don't|didn't|doesn't|"
                             r"may|might|wanna)\b", re.IGNORECASE)
_TAG_QUESTION = re.compile(r",\s*(?:right|no|yeah|yes|ok|okay|correct|huh|eh|isn't it|don't I|didn't I|am I not|"
                           r"aren't I|or not|or what)\s*\?+$", re.IGNORECASE)
_FOLLOW_AT = re.compile(r"^\s+(?:at|for)\s+" + _VALUE + _END, _FLAGS)
_FOLLOW_AS = re.compile(r"^\s+as\s+(?P<article>an?)\s+" + _VALUE + _END, _FLAGS)


def extract_facts(episode: Episode) -> list[Candidate]:
    """Return the facts a user's episode states about its speaker, in order of appearance."""
    if not episode.active or episode.role in NON_USER_ROLES:
        return []
    subject, possessive = _subject(episode)
    text = normalise_quotes(episode.content)
    reader = _Reader(subject, possessive, episode, case_tells(text))
    found: list[Candidate] = []
    parts = sentences(protect(text))
    for index, sentence in enumerate(parts):
        candidates = reader.read(sentence)
        if candidates and not _not_meant(sentence, parts[index + 1] if index + 1 < len(parts) else None):
            found.extend(candidates)
    return found


def _not_meant(sentence: str, following: str | None) -> bool:
    """Whether a sentence is a question, or sarcastic, or taken back by the next one ("I love Mondays. Not.")."""
    asks = sentence.rstrip("\"') ").endswith("?")
    return bool(asks and (_QUESTION_START.match(sentence) or _TAG_QUESTION.search(sentence))
                or _SARCASM.search(sentence)
                or _IRONIC.search(sentence) or (following is not None and _TAKEN_BACK.match(following)))


def _subject(episode: Episode) -> tuple[str, str]:
    """Return how a fact names the speaker, and its possessive: ("Ana", "Ana's") or ("The user", "The user's")."""
    name = episode.speaker
    if not name or name.lower() in ("user", "human", "me"):
        return "The user", "The user's"
    return name, f"{name}'" if name.endswith("s") else f"{name}'s"


class _Reader:
    """Reads the sentences of one episode."""

    def __init__(self, subject: str, possessive: str, episode: Episode, cased: bool) -> None:
        self.subject = subject
        self.possessive = possessive
        self.episode = episode
        self.cased = cased

    def read(self, sentence: str) -> list[Candidate]:
        """Return the candidates of one (protected) sentence, in order."""
        question_from = _question_clause(sentence)
        # (start, end, candidates); a span one pattern took is not read again by another.
        taken: list[tuple[int, int, list[Candidate]]] = []

        def free(match: re.Match[str]) -> bool:
            return not any(start <= match.start() < end for start, end, _ in taken)

        lower = sentence.lower()
        for pattern in PATTERNS:
            if not any(key in lower for key in pattern.keys):
                continue
            for match in pattern.regex.finditer(sentence):
                if free(match) and self._stated(sentence, match, question_from):
                    made = list(self._candidates(pattern, match, sentence))
                    if made:
                        taken.append((match.start(), _kept_end(match, made), made))
        for match in MY_X_IS.finditer(sentence) if "my" in lower else ():
            if free(match) and self._stated(sentence, match, question_from):
                made = self._my_x_is(match, sentence[:match.start()])
                if made is not None:
                    taken.append((match.start(), match.end(), [made]))
        first = min((start for start, _, _ in taken), default=None)
        for pattern in ELIDED if first is not None else ():
            if not any(key in lower for key in pattern.keys):
                continue
            for match in pattern.regex.finditer(sentence):
                if match.start() > first and free(match) and self._stated(sentence, match, question_from):
                    made = list(self._candidates(pattern, match, sentence))
                    if made:
                        taken.append((match.start(), _kept_end(match, made), made))
        return [c for _, _, made in sorted(taken, key=lambda item: item[0]) for c in made]

    def _stated(self, sentence: str, match: re.Match[str], question_from: int | None) -> bool:
        """Whether a match is a plain statement: not in a question, not after a negation or a hedge in its
        clause, not in quotes, not taken back right after."""
        start = match.start()
        if question_from is not None and start >= question_from:
            return False
        if sentence.count('"', 0, start) % 2:
            return False
        clause = clause_start(sentence, start)
        if _HEDGE.search(sentence, clause, start) or _RELATIVE.search(sentence, clause, start):
            return False
        return _AFTER.match(sentence, match.end()) is None

    def _candidates(self, pattern: Pattern, match: re.Match[str], sentence: str) -> Iterator[Candidate]:
        attribute = pattern.attribute
        raw = match.group("value")
        groups = match.groupdict()
        if attribute == "occupation" and groups.get("job") is not None:
            raw = groups["job"]
        if attribute == OPINION:
            whole = _TO_CLAUSE_END.match(sentence, match.start("value"))
            shaped = values.opinion(raw, self.cased, clause=whole.group("value") if whole else None)
        else:
            shaped = values.SHAPERS[attribute](raw, self.cased)
        if not shaped:
            return
        verb = (groups.get("verb") or "").lower()
        verb = " ".join(verb.split())
        for value, count in shaped:
            article = (groups.get("article") or ("an" if value[:1].lower() in "aeiou" else "a")).lower()
            polarity = None
            if attribute == OPINION:
                positive = verb not in _NEGATIVE and not verb.startswith(("don't", "dont", "do not"))
                polarity = "+" if positive else "-"
            content = pattern.template.format(s=self.subject, sp=self.possessive, v=value, a=article,
                                              c=count if count is not None else (groups.get("count") or ""),
                                              verb=_verb(verb))
            yield self._candidate(content, attribute, value, polarity)
        rest = sentence[match.end():]
        if attribute == "allergic_to":
            if _NARROWED.match(rest):
                return
            for item in _list_items(rest):
                named = values.allergens(item, self.cased)
                if not named:
                    break
                yield from (self._candidate(pattern.template.format(s=self.subject, v=v), attribute, v, None)
                            for v, _ in named)
        if attribute == "works_at":
            job = _FOLLOW_AS.match(rest)
            if job and (title := values.job(job.group("value"), self.cased)):
                yield self._candidate(f"{self.subject} works as {job.group('article').lower()} {title[0][0]}",
                                      "occupation", title[0][0], None)
        if attribute == "occupation":
            employer = _FOLLOW_AT.match(rest)
            if employer and (where := values.employer(employer.group("value"), self.cased)):
                yield self._candidate(f"{self.subject} works at {where[0][0]}", "works_at", where[0][0], None)

    def _candidate(self, content: str, attribute: str, value: str, polarity: str | None) -> Candidate:
        return Candidate(content=unmask(" ".join(content.split())), evidence=[self.episode], attribute=attribute,
                         value=unmask(value), polarity=polarity)

    def _my_x_is(self, match: re.Match[str], before: str) -> Candidate | None:
        key_text = " ".join(match.group("key").split())
        key = key_text.lower()
        last = key.split()[-1]
        if key in lexicon.MY_X_SKIP or last in lexicon.MY_X_SKIP_LAST or key.startswith("name") or any(
                w in lexicon.PERSONAL or w in lexicon.NOT_IN_KEYS for w in key.split()) or _ONE_OF.search(before) \
                or _FAVOURITE.fullmatch(key) or not _MY_LEAD.match(before[clause_start(before, len(before)):].strip()):
            return None
        value = values.clean(match.group("value"))
        if value is None:
            return None
        kind = "email" if {"email", "e-mail"} & set(key.split()) else \
            lexicon.DATA_KEYS.get(last) or lexicon.DATA_KEYS.get(last.removesuffix("'s"))
        if _FAVOURITE.match(key):
            kind = "short"
        elif key.endswith("'s name") or key.endswith(" name"):
            kind = "name"
        checked = values.my_value(value, kind, self.cased)
        if checked is None:
            return None
        return self._candidate(f"{self.possessive} {key_text} is {checked}", f"my:{key}", checked, None)


_LIST_ITEM = re.compile(r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)(?P<item>[^,.;!?\n()\"]{1,40}?)"
                        r"(?=\s*(?:[,.;!?\n()\"]|$)|\s+(?:and|or|&)\s)", _FLAGS)


def _kept_end(match: re.Match[str], made: list[Candidate]) -> int:
    """Return where the part of a match its first candidate kept ends ("I live in Madrid| and work at ..."), so
    that what follows may be read by another pattern."""
    raw = match.group("value") if "value" in match.groupdict() else None
    value = made[0].value
    if raw and value and len(made) == 1:
        at = unmask(raw).find(value)
        if at >= 0:
            return match.start("value") + at + len(value)
    return match.end()


def _list_items(rest: str) -> Iterator[str]:
    """Yield the further items of a list a value starts ("eggs| , milk and soy"), in order."""
    at = 0
    while (item := _LIST_ITEM.match(rest, at)) is not None:
        yield item.group("item")
        at = item.end()


def _question_clause(sentence: str) -> int | None:
    """Return where the question of a sentence that ends with one starts (its last clause), else None."""
    if not sentence.rstrip("\"') ").endswith("?"):
        return None
    return clause_start(sentence, len(sentence))


def _verb(verb: str) -> str:
    if verb.startswith(("don't", "dont", "do not")):
        return "doesn't " + verb.split()[-1]
    return _VERBS.get(verb, verb)


