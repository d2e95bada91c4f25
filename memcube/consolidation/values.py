"""Values of facts: what a pattern captured, made a value of the right shape for its attribute, or nothing.

Each shaper takes the captured text (with protected dots, text.MASK) and whether the writer uses capitals, and
returns the values it holds as (value, count) pairs — none when it is not a value of that kind: a place, an
employer, a partner or a name is a run of capitalised words ("Berlin", "the U.S.", "Dr. Oetker"); an allergy
names an allergen; a possession is not an event or an idiom; an opinion's object is not the conversation
("I like that"); a job is one.
"""

from __future__ import annotations

import re
from typing import Callable

from memcube.consolidation import lexicon
from memcube.text import MASK, unmask

_POSSESSIVE = {"my": "their", "My": "their"}
_TRAILING = re.compile(r"\s+(?:now|these days|at the moment|right now|recently|lately|again|too|as well|"
                       r"last (?:week|month|year|night)|this (?:week|month|year)|yesterday|today|a lot|so much|"
                       r"very much|currently|originally|full[- ]time|part[- ]time|mostly|unfortunately|fortunately|"
                       r"sadly|honestly|apparently|obviously|basically|actually|really|seriously|literally|luckily|"
                       r"thankfully|hopefully|definitely|certainly|clearly|though|tho|anyway|anyways|for real|"
                       r"sometimes|often|usually|always|occasionally|every now and then|from time to time|"
                       r"big time|(?:on|at|over) (?:the )?weekends?|on weekdays|(?:on|every) (?:mon|tues|wednes|thurs|"
                       r"fri|satur|sun)days?|(?:in|during) the (?:mornings?|afternoons?|evenings?|summers?|winters?)|"
                       r"at night|every (?:day|week|morning|evening|night|weekend|year|summer|winter)|"
                       r"in (?:the )?(?:summer|winter|spring|autumn|fall)|in my (?:free|spare) time)$", re.IGNORECASE)
_CALLED = re.compile(r"^(?:an?|the|this)\s+(?:[\w-]+\s+){0,2}(?:called|named)\s+(?P<name>.+)$", re.IGNORECASE)
_COUNT = r"(?:an?|one|two|three|four|five|six|\d+|some|several)"
_AND_COUNT = re.compile(r"\s+and\s+(?=" + _COUNT + r"\s)", re.IGNORECASE)
_LEADING_COUNT = re.compile(r"^(?P<count>" + _COUNT + r")\s+", re.IGNORECASE)
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE)
_WORD = re.compile(r"[\w'-]+")
# Where an opinion's object gives way to examples of it.
_EXAMPLE = re.compile(r"\s+(?:like|such as|including|especially|e\ue000g\ue000|for example)\s", re.IGNORECASE)
_OBJECT_LEAD = re.compile(r"^(?:(?:both|also|really|just|even|still|too|all)\s+)+", re.IGNORECASE)


def clean(value: str) -> str | None:
    """Return a value without quotes, fillers and trailing time words; None if nothing (or too much) is left."""
    value = value.strip().strip("\"'")
    tokens = value.split()
    while tokens and tokens[-1].lower() in lexicon.FILLERS:
        tokens.pop()
    value = " ".join(tokens)
    while True:
        trimmed = _TRAILING.sub("", value).strip()
        if trimmed == value:
            break
        value = trimmed
    if not value or len(value.split()) > 10:
        return None
    return value


def is_proper(token: str) -> bool:
    """Whether a token reads as (part of) a name: capitalised ("Berlin", "McDonald's", "U.S.", "3M"), or a
    brand written with an inner capital ("iPhone")."""
    if token.lower().strip("'") in lexicon.NOT_NAMES:
        return False
    first = token[0]
    if first.isupper():
        return True
    if first.isdigit():
        return any(c.isupper() for c in token)
    return first.isalpha() and any(c.isupper() for c in token[1:])


def proper_run(value: str, *, cased: bool, allow_the: bool = True, max_words: int = 6) -> str | None:
    """Return the name a value starts with (a run of capitalised words, with "the" before and particles inside),
    or None. Without capitals in the text, a short value free of common words stands for itself."""
    tokens = value.split()
    if not cased:
        if not tokens or len(tokens) > 3 or any(t.lower() in lexicon.NOT_VALUES or t.lower() in lexicon.PERSONAL
                                                for t in tokens):
            return None
        if any(not _WORD.fullmatch(t.replace(MASK, "")) or any(c.isdigit() for c in t) for t in tokens):
            return None
        return " ".join(tokens)
    out: list[str] = []
    i = 0
    if allow_the and tokens and tokens[0].lower() == "the":
        out.append("the")
        i = 1
    names = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if is_proper(token):
            names += 1
        elif names and following and is_proper(following) and (token.lower() in lexicon.PARTICLES or token == "&"):
            pass
        else:
            break
        out.append(token)
        i += 1
    if not names or names > max_words:
        return None
    rest = tokens[i:]
    # "Procter and Gamble", "Berlin or Potsdam": one name or two, it cannot tell.
    if len(rest) >= 2 and rest[0].lower() in ("and", "or") and is_proper(rest[1]):
        return None
    return " ".join(out)


def place(raw: str, cased: bool) -> list[tuple[str, None]]:
    """A place (or a partner): the name the value starts with."""
    value = clean(raw)
    if value is None or value.lower().endswith(("anymore", "any more")):
        return []
    run = proper_run(value, cased=cased)
    return [(run, None)] if run else []


def employer(raw: str, cased: bool) -> list[tuple[str, None]]:
    """An employer: the name the value starts with, or that it gives ("a startup called Loopy")."""
    value = clean(raw)
    if value is None:
        return []
    called = _CALLED.match(value)
    return place(called.group("name") if called else value, cased)


def name(raw: str, cased: bool) -> list[tuple[str, None]]:
    """A person's name: capitalised words; without capitals, one or two words that are not common ones."""
    value = clean(raw)
    if value is None:
        return []
    if not cased:
        tokens = [t.lower() for t in value.split()]
        common = lexicon.NOT_VALUES | lexicon.PERSONAL | lexicon.NOT_NAMES
        if len(tokens) > 2 or any(t in common or not t.replace("-", "").replace("'", "").isalpha()
                                  or t.endswith(("ed", "ing", "ly")) for t in tokens):
            return []
        return [(value, None)]
    run = proper_run(value, cased=True, allow_the=False, max_words=4)
    return [(run, None)] if run else []


def age(raw: str, cased: bool) -> list[tuple[str, None]]:
    """An age in years, 1 to 120."""
    return [(raw, None)] if raw.isdigit() and 1 <= int(raw) <= 120 else []


def singular(word: str) -> str:
    """Return a word lower-cased and crudely singular ("strawberries" -> "strawberry")."""
    word = word.lower().replace(MASK, ".")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def allergens(raw: str, cased: bool) -> list[tuple[str, None]]:
    """The allergens a value names, each on its own ("penicillin and shellfish"); none in "waiting"."""
    value = clean(raw)
    if value is None:
        return []
    out = []
    for part in re.split(r"\s*,\s*|\s+(?:and|or|&)\s+", value):
        words = [w for w in part.split() if w.lower() not in ("a", "an", "the", "some", "most", "all", "both")]
        if words and any(singular(w) in lexicon.ALLERGENS for w in words) and not any(
                w.lower() in lexicon.PERSONAL or MASK in w for w in words):
            out.append((" ".join(words), None))
    return out


def things(raw: str, cased: bool) -> list[tuple[str, str | None]]:
    """What someone has, with its count, each thing of "two kids and a dog" on its own; not an event ("a
    flight"), an amount ("a lot") or an idiom ("a heart of gold")."""
    value = clean(raw)
    if value is None:
        return []
    out: list[tuple[str, str | None]] = []
    for i, part in enumerate(_AND_COUNT.split(value)):
        count = None
        if i:
            leading = _LEADING_COUNT.match(part)
            count = leading.group("count") if leading else None
            part = part[leading.end():] if leading else part
        thing = personal_free(part)
        if thing is None:
            continue
        words = [singular(w) for w in _WORD.findall(thing.lower())]
        if not words or len(words) > 6 or words[0] == "of" or any(w in lexicon.VAGUE_HAS or w in lexicon.ANAPHORIC
                                                                   for w in words):
            continue
        out.append((thing, count))
    return out


def personal_free(value: str) -> str | None:
    """Return a value with "my" made "their"; None if it still speaks in the first or second person."""
    tokens = [_POSSESSIVE.get(t, t) for t in value.split()]
    if not tokens or any(t.lower().strip(".,!?") in lexicon.PERSONAL or t.lower() == "my" for t in tokens):
        return None
    return " ".join(tokens)


def opinion(raw: str, cased: bool, clause: str | None = None) -> list[tuple[str, None]]:
    """What an opinion is about: the words up to a preposition ("hiking| in the mountains"), or to the end of
    the clause (`clause`) when those leave a verb without its complement ("going| to this park"), up to an
    example ("classical| like Bach"); none when it is the conversation itself ("that", "you", "how ..."),
    points at something said before ("his tech"), is still incomplete, or is not an object at all ("the
    thing I love is awesome")."""
    last = raw.split()[-1].lower() if raw.split() else ""
    if clause and (last in lexicon.DANGLING or re.match(r"(?:being|getting)\b", raw, re.IGNORECASE)):
        raw = clause
    if any(w.strip(".,!?'\"").lower() in lexicon.ANAPHORIC for w in raw.split()):
        return []  # "being in places like this"
    value = clean(_EXAMPLE.split(raw, maxsplit=1)[0])
    if value is None:
        return []
    value = _OBJECT_LEAD.sub("", value)
    words = [w.strip(".,!?'\"").lower() for w in value.split()]
    if not words or value.lower() in lexicon.VAGUE_OBJECTS or words[0] in lexicon.VAGUE_OBJECTS \
            or " ".join(words[:2]) in lexicon.VAGUE_OBJECTS \
            or words[0] in lexicon.NOT_OBJECTS or words[-1] in lexicon.DANGLING or len(words) > 7 \
            or any(w in lexicon.ANAPHORIC for w in words):
        return []
    free = personal_free(value)
    return [(free, None)] if free else []


def job(raw: str, cased: bool) -> list[tuple[str, None]]:
    """A job title that ends in a known job ("software engineer"), not a former or a wished one."""
    value = clean(re.split(r"\s+(?:and|or|&)\s+", raw, maxsplit=1)[0])
    if value is None:
        return []
    words = value.lower().split()
    if len(words) > 3 or singular(words[-1]) not in lexicon.JOBS and words[-1] not in lexicon.JOBS \
            or any(w in lexicon.NOT_JOB or w in lexicon.PERSONAL or w in lexicon.NOT_VALUES for w in words):
        return []
    return [(value, None)]


def my_value(value: str, kind: str | None, cased: bool) -> str | None:
    """Return the value of "my <key> is <value>" if it has the shape its key asks for, else None."""
    plain = unmask(value)
    tokens = plain.split()
    if kind == "email":
        return value if len(tokens) == 1 and re.fullmatch(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", plain) else None
    if kind == "link":
        return value if len(tokens) == 1 and re.search(r"[./]", plain) and re.search(r"[a-z]", plain) else None
    if kind == "handle":
        return value if len(tokens) == 1 and re.fullmatch(r"@?[\w.-]{2,40}", plain) else None
    if kind == "digits":
        return value if any(c.isdigit() for c in plain) and len(tokens) <= 6 else None
    if kind == "date":
        value = re.sub(r"^on\s+", "", value, flags=re.IGNORECASE)
        plain = unmask(value)
        return value if (any(c.isdigit() for c in plain) or _MONTH.search(plain)) and len(plain.split()) <= 4 \
            else None
    if kind == "name":
        names = name(value, cased)
        return names[0][0] if names and names[0][0] == value else None
    if kind == "short":
        lowered = plain.lower()
        if len(tokens) > 5 or lowered.split()[0] in lexicon.VAGUE_OBJECTS or lowered in lexicon.VAGUE_OBJECTS:
            return None
        return personal_free(value)
    # Any other key ("my car", "my brother", "my doctor"): only a value that names something.
    if re.fullmatch(r"\d+(?:" + MASK + r"\d+)?\s+(?:years?|months?)\s+old", value, re.IGNORECASE):
        return value
    if cased and proper_run(value, cased=True) == value:
        return value
    article = re.match(r"^(?:an?)\s+(?P<rest>.+)$", value, re.IGNORECASE)
    if article and len(tokens) <= 6:
        rest = article.group("rest").lower().split()
        if rest[0] not in lexicon.NOT_JOB and rest[0] not in lexicon.EVALUATIVE:
            return personal_free(value)
    return None


SHAPERS: dict[str, Callable[[str, bool], list[tuple[str, str | None]]]] = {
    "lives_in": place, "from": place, "partner": place, "works_at": employer, "name": name, "age": age,
    "allergic_to": allergens, "has": things, "occupation": job,
}
