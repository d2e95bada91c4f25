"""Sentences and clauses of chat text (the heuristic engine reads facts from them; context assembly picks the
sentences of a long memory that answer a query). Pure functions, no state.

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
_TRAILING_ABBREVIATIONS = r"(?:Inc|Ltd|Corp|Co|Bros|Jr|Sr|etc|vs|approx|Ave|Rd|Blvd|Ln|Dept|Univ|ca|cf|viz)\."
_LINK = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|[A-Za-z0-9][\w-]*(?:\.[\w-]+)*\.[a-z]{2,24}"
                   r"(?:/[\w./~%+-]*)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)+")
# Read at the start of a token, against the whole text (so that what follows the token can be looked at).
_TITLE = re.compile(_TITLES + r"|No\.(?=\s*\d)")
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Z]\.(?=\s+[A-Z][a-z])|" + _TRAILING_ABBREVIATIONS)
# A run of non-space characters with a dot in it; the punctuation that may open it, or close a link.
_DOTTED = re.compile(r"\S*\.\S*")
_OPENING = re.compile(r"[(\[\"']+")
_LINK_TAIL = re.compile(r"[.,;:!?)\]'\"]+$")

# Words that start a new sentence after an abbreviation's dot ("... the U.S. I love it"): the dot then also
# ends the sentence. A title's dot never does.
_STARTERS = {"i", "i'm", "i've", "i'd", "i'll", "we", "we're", "we've", "my", "our", "the", "this", "that", "it",
             "it's", "he", "she", "they", "there", "then", "but", "and", "so", "also", "now", "anyway", "yes", "no",
             "ok", "okay", "thanks", "please", "hi", "hello", "hey", "you", "your", "oh", "well", "sorry", "btw"}
_NEXT_WORD = re.compile(r"\s+([A-Za-z']+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
# Where a clause starts inside a sentence: punctuation, or a conjunction that opens a new one.
CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\b(?:but|and|so|because|since|although|though|while|"
                          r"whereas|yet|or)\b", re.IGNORECASE)


def normalise_quotes(text: str) -> str:
    """Return the text with curly quotes and apostrophes made straight (one character for one)."""
    return text.translate(_QUOTES)


def protect(text: str) -> str:
    """Return the text with every dot that does not end a sentence replaced by MASK (same length)."""
    if "." not in text:
        return text
    chars = list(text)
    for token in _DOTTED.finditer(text):
        start, end = token.span()
        opening = _OPENING.match(text, start, end)
        start = opening.end() if opening else start
        tail = _LINK_TAIL.search(text, start, end)
        link = _LINK.fullmatch(text, start, tail.start() if tail else end)
        if link is not None:
            _mask(chars, start, link.end())
            continue
        for number in _NUMBER.finditer(text, start, end):
            _mask(chars, *number.span())
        title = _TITLE.match(text, start)
        if title is not None and title.end() <= end:
            _mask(chars, *title.span())
            continue
        abbreviation = _ABBREVIATION.match(text, start)
        if abbreviation is not None and abbreviation.end() <= end:
            _mask(chars, *abbreviation.span())
            if _starts_sentence(text, abbreviation.end()):
                chars[abbreviation.end() - 1] = "."  # "... the U.S. I love it": it ends the sentence too
    return "".join(chars)


def _mask(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] == ".":
            chars[i] = MASK


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
