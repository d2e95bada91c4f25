"""Sentences and clauses of chat text, for the heuristic engine. Pure functions, no state.

A dot ends a sentence only where it is not part of something else: an abbreviation ("Dr.", "St.", "Inc.",
"e.g.", "U.S."), an email, a URL or domain, a decimal or a dotted number ("3.5", "5.30", "12.04.1990").
`protect` replaces every such dot with MASK — one character for one, so positions stay the same — and what
is read afterwards (sentences, clauses, values) treats it as a letter; `unmask` gives the dots back.
"""

from __future__ import annotations

import re

# A private-use character: never in real text, not punctuation, not a word boundary's concern.
MASK = "\ue000"

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
# Titles stand before a name: their dot never ends a sentence ("Dr. Who", "St. Louis", "Mt. Pleasant").
_TITLES = r"(?:Dr|Mr|Mrs|Ms|Mx|Prof|St|Mt|Ft|Gen|Col|Capt|Lt|Sgt|Rev|Hon|Gov|Sen|Rep|Pres|Msgr)\."
# Abbreviations that follow a word and may also end a sentence ("I work at Acme Inc. It is fine").
_TRAILING_ABBREVIATIONS = r"\b(?:Inc|Ltd|Corp|Co|Bros|Jr|Sr|etc|vs|approx|Ave|Rd|Blvd|Ln|Dept|Univ|ca|cf|viz)\."
# (pattern, what it is): "link" spans lose trailing punctuation; a "title" dot never ends a sentence; an
# "abbreviation" dot also ends one when a sentence starter follows.
_PROTECTED = [
    (re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+"), "link"),                                   # URLs
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "link"),                                   # emails
    (re.compile(r"\b[A-Za-z0-9][\w-]*(?:\.[\w-]+)*\.[a-z]{2,24}\b(?:/[\w./~%+-]*)?"), "link"),  # priya.dev/x
    (re.compile(r"\d+(?:\.\d+)+"), "number"),                                                    # 3.5, 12.04.1990
    (re.compile(r"\b(?:[A-Za-z]\.){2,}"), "abbreviation"),                                        # U.S., e.g., a.m.
    (re.compile(r"\b[A-Z]\.(?=\s+[A-Z][a-z])"), "abbreviation"),                                  # John F. Kennedy
    (re.compile(r"\bNo\.(?=\s*\d)"), "title"),                                                   # No. 5
    (re.compile(r"(?<![\w.])" + _TITLES), "title"),
    (re.compile(_TRAILING_ABBREVIATIONS), "abbreviation"),
]
_URL_TAIL = re.compile(r"[.,;:!?)\]'\"]+$")
# Words that start a new sentence after an abbreviation's dot ("... the U.S. I love it"): the dot then also
# ends the sentence. A title's dot never does.
_STARTERS = {"i", "i'm", "i've", "i'd", "i'll", "we", "we're", "we've", "my", "our", "the", "this", "that", "it",
             "it's", "he", "she", "they", "there", "then", "but", "and", "so", "also", "now", "anyway", "yes", "no",
             "ok", "okay", "thanks", "please", "hi", "hello", "hey", "you", "your", "oh", "well", "sorry", "btw"}
_NEXT_WORD = re.compile(r"\s+([A-Za-z']+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
# Where a clause starts inside a sentence: punctuation, or a conjunction that opens a new one.
CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\b(?:but|and|so|because|although|though|while|whereas|"
                          r"yet|or)\b", re.IGNORECASE)


def normalise_quotes(text: str) -> str:
    """Return the text with curly quotes and apostrophes made straight (one character for one)."""
    return text.translate(_QUOTES)


def protect(text: str) -> str:
    """Return the text with every dot that does not end a sentence replaced by MASK (same length)."""
    chars = list(text)
    for pattern, kind in _PROTECTED:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "link":
                tail = _URL_TAIL.search(text, start, end)
                end = tail.start() if tail else end
            for i in range(start, end):
                if chars[i] == ".":
                    chars[i] = MASK
            if kind == "abbreviation" and chars[end - 1] == MASK and _starts_sentence(text, end):
                chars[end - 1] = "."
    return "".join(chars)


def _starts_sentence(text: str, at: int) -> bool:
    following = _NEXT_WORD.match(text, at)
    return following is not None and following.group(1)[0].isupper() and following.group(1).lower() in _STARTERS


def unmask(text: str) -> str:
    """Return protected text with its dots back."""
    return text.replace(MASK, ".")


def sentences(masked: str) -> list[str]:
    """Return the sentences of protected text, in order, without empty ones."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(masked)) if s]


def split_sentences(text: str) -> list[str]:
    """Return the sentences of plain text, in order: dots of abbreviations, emails, URLs and numbers kept."""
    return [unmask(s) for s in sentences(protect(normalise_quotes(text)))]


def clause_start(sentence: str, at: int) -> int:
    """Return where the clause holding position `at` of a sentence starts."""
    start = 0
    for match in CLAUSE_BREAK.finditer(sentence, 0, at):
        start = match.end()
    return start


def case_tells(text: str) -> bool:
    """Whether the writer uses capitals, so that a lower-case word is not a name: the text has both upper- and
    lower-case letters ("i live in berlin" and "I LIVE IN BERLIN" do not)."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text)
