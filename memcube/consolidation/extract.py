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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

from memcube.consolidation.ledger import Candidate, Episode
from memcube.consolidation.text import (MASK, case_tells, clause_start, normalise_quotes, protect, sentences,
                                        unmask)

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
_END = (r"(?=\s*(?:[.,;!?\n()\"]|$)|" + _NEW_CLAUSE + r"|\s+(?:because|since|but|and then|so that|which|where|"
        r"when|if|though|although|while|as well as|who|whom|after|before|until|for|with|in|at|on|from|to|near|"
        r"during|by|last|next|every|as|cause|cuz)\b)")
# "my X is Y": Y runs to the end of its clause (it may hold prepositions: "to live in Paris").
_CLAUSE_END = (r"(?=\s*(?:[.,;!?\n()\"]|$)|" + _NEW_CLAUSE + r"|\s+(?:because|since|but|if|when|which|who|while|"
               r"although|though|unless|whereas|cause|cuz)\b)")
_I = r"\bI(?:\s+|(?='))"
_I_AM = r"\b(?:I'm|I\s+am|im)\s+"
_I_HAVE = r"\bI(?:'ve|\s+have)\s+"

_FLAGS = re.IGNORECASE


@dataclass(frozen=True)
class Pattern:
    attribute: str
    regex: re.Pattern[str]
    template: str


def _p(attribute: str, body: str, template: str, end: str = _END) -> Pattern:
    return Pattern(attribute, re.compile(body + end, _FLAGS), template)


_STILL = r"(?=\s+(?:for|since)\s)"  # "I've lived in Tokyo for three years": still true; "I've lived in Tokyo": not
PATTERNS = [
    _p("lives_in", _I + _ADVERBS + r"(?:live|reside)\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("lives_in", _I_AM + _ADVERBS + r"(?:living|residing|based|settled)\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("lives_in", r"\b(?:I|we)(?:'ve|\s+have)?\s+" + _ADVERBS + r"(?:moved|relocated)\s+(?:back\s+)?to\s+" + _VALUE,
       "{s} lives in {v}"),
    _p("lives_in", r"\bwe(?:'re|\s+are)?\s+" + _ADVERBS + r"(?:live|living|based)\s+in\s+" + _VALUE,
       "{s} lives in {v}"),
    _p("lives_in", r"^(?:(?:just|finally|recently)\s+)?(?:moved|relocated)\s+to\s+" + _VALUE, "{s} lives in {v}"),
    _p("lives_in", _I_HAVE + _ADVERBS + r"lived\s+in\s+" + _VALUE, "{s} lives in {v}", _STILL),
    _p("lives_in", r"\bmy\s+(?:home|house|apartment|flat)\s+is\s+in\s+" + _VALUE, "{s} lives in {v}"),
    _p("occupation", _I + _ADVERBS + r"(?:work|am working|'m working)\s+as\s+(?P<article>an?)\s+" + _VALUE,
       "{s} works as {a} {v}"),
    _p("occupation", _I_HAVE + r"been\s+working\s+as\s+(?P<article>an?)\s+" + _VALUE, "{s} works as {a} {v}"),
    _p("occupation", _I_AM + r"(?:now\s+)?(?P<article>an?)\s+(?P<job>" + r"(?:[\w-]+\s+){0,2}[\w-]+)" + r"(?P<value>)",
       "{s} works as {a} {v}"),
    _p("works_at", _I + _ADVERBS + r"(?:work|am working|'m working)\s+(?:at|for)\s+" + _VALUE, "{s} works at {v}"),
    _p("works_at", r"\bI(?:'ve|\s+have)?\s+" + _ADVERBS + r"(?:started|begun|began)\s+(?:working|a new job)\s+"
       r"(?:at|for)\s+" + _VALUE, "{s} works at {v}"),
    _p("works_at", _I_HAVE + _ADVERBS + r"(?:worked|been working)\s+(?:at|for)\s+" + _VALUE, "{s} works at {v}",
       _STILL),
    _p("name", r"\bmy\s+name(?:\s+is|'s)\s+" + _VALUE, "{sp} name is {v}"),
    _p("name", r"\bcall\s+me\s+" + _VALUE, "{sp} name is {v}"),
    _p("name", r"\b(?:hi|hello|hey|hiya)(?:\s+there)?[,!]?\s+(?:I'm|I\s+am)\s+" + _VALUE, "{sp} name is {v}"),
    _p("name", r"^(?:I'm|I\s+am)\s+" + _VALUE, "{sp} name is {v}", r"(?=\s*,?\s+(?:by the way|btw|here)\b)"),
    _p("age", _I_AM + r"(?P<value>\d{1,3})(?:\s+years?\s+old|\s*yo|\s*y/o)?",
       "{s} is {v} years old", r"(?=\s*(?:[,;!?]|\.|$)|\s+(?:and|but|now|btw|so)\b)"),
    _p("age", _I + r"(?:just\s+)?turned\s+(?P<value>\d{1,3})", "{s} is {v} years old",
       r"(?=\s*(?:[,;!?]|\.|$)|\s+(?:last|this|yesterday|today|on|in|and|but)\b)"),
    _p("from", _I_AM + _ADVERBS + r"(?:originally\s+)?from\s+" + _VALUE, "{s} is from {v}"),
    _p("from", _I + _ADVERBS + r"(?:originally\s+)?come\s+from\s+" + _VALUE, "{s} is from {v}"),
    _p("partner", _I_AM + _ADVERBS + r"(?P<verb>married|engaged)\s+to\s+" + _VALUE, "{s} is {verb} to {v}"),
    _p("partner", _I_HAVE + r"been\s+(?P<verb>married|engaged)\s+to\s+" + _VALUE, "{s} is {verb} to {v}"),
    _p("allergic_to", _I_AM + _ADVERBS + r"allergic\s+to\s+" + _VALUE, "{s} is allergic to {v}"),
    _p("has", _I + _ADVERBS + r"(?:have|'ve got|have got)\s+(?P<count>an?|one|two|three|four|five|six|\d+)\s+"
       + _VALUE, "{s} has {c} {v}"),
    _p(OPINION, _I + _ADVERBS + r"(?P<verb>like|love|adore|enjoy|prefer|hate|dislike|detest|loathe|can't stand|"
       r"cannot stand|can not stand|(?:don't|dont|do not)\s+(?:really\s+|particularly\s+|actually\s+|much\s+)?"
       r"(?:like|enjoy|love))\s+" + _VALUE, "{s} {verb} {v}"),
    _p(OPINION, _I_AM + r"(?:(?P<verb>not|no)\s+)?(?:an?\s+)?(?:(?:big|huge|great|massive|real|total)\s+)?fan\s+of\s+"
       + _VALUE, "{s} {verb} {v}"),
]
# "my favourite colour is green", "my sister's name is Ana": the key becomes the attribute.
MY_X_IS = re.compile(r"\bmy\s+(?P<key>[a-z][\w'-]*(?:\s+[\w'-]+){0,3}?)\s+(?:is|are|'s)\s+" + _VALUE + _CLAUSE_END,
                     _FLAGS)
MY_X_SKIP = {"name", "bad", "gosh", "god", "goodness", "life", "heart", "head", "advice", "plan", "guess", "pleasure"}
# "my biggest problem is", "my main point is": the last word of the key says it is not a fact.
MY_X_SKIP_LAST = {"point", "guess", "problem", "question", "concern", "fault", "pleasure", "turn", "mind", "feeling",
                  "impression", "idea", "thing", "hope", "day", "week", "worry", "fear", "bet", "plan", "dream",
                  "goal", "wish", "excuse", "reason", "answer", "issue", "take", "opinion", "view", "understanding"}
# Keys that name a datum, by their last word, and the shape its value must have.
_DATA_KEYS = {
    "email": "email", "e-mail": "email", "mail": "email",
    "website": "link", "site": "link", "blog": "link", "homepage": "link", "github": "link", "gitlab": "link",
    "linkedin": "link", "portfolio": "link",
    "twitter": "handle", "instagram": "handle", "handle": "handle", "username": "handle", "tiktok": "handle",
    "number": "digits", "phone": "digits", "mobile": "digits", "cell": "digits", "code": "digits",
    "postcode": "digits", "address": "digits",
    "birthday": "date", "birthdate": "date", "anniversary": "date",
    "name": "name", "nickname": "name", "surname": "name",
    "pronouns": "short", "language": "short", "tongue": "short", "nationality": "short", "hometown": "short",
    "sign": "short", "type": "short", "size": "short", "major": "short", "religion": "short",
}
_FAVOURITE = re.compile(r"^(?:least\s+)?(?:favou?rite|fave|fav)\b")

_VERBS = {"like": "likes", "love": "loves", "adore": "adores", "enjoy": "enjoys", "prefer": "prefers",
          "hate": "hates", "dislike": "dislikes", "detest": "detests", "loathe": "loathes",
          "can't stand": "can't stand", "cannot stand": "can't stand", "can not stand": "can't stand",
          "": "is a fan of", "not": "is not a fan of", "no": "is not a fan of"}
_NEGATIVE = {"hate", "dislike", "detest", "loathe", "can't stand", "cannot stand", "can not stand", "not", "no"}
# Objects that make "I like X" about the conversation rather than a preference.
_VAGUE_OBJECTS = {"it", "that", "this", "them", "you", "him", "her", "how", "what", "when", "where", "why", "who",
                  "so", "too", "the idea", "the way", "your", "yours", "these", "those", "me", "us", "everything",
                  "anything", "nothing", "something", "everyone", "anyone", "someone", "people", "ya", "u", "y'all"}
_VAGUE_HAS = {"question", "feeling", "idea", "lot", "few", "bit", "chance", "good", "great", "hard", "quick",
              "minute", "moment", "second", "look", "problem", "meeting", "favor", "favour", "point", "busy",
              "million", "billion", "thousand", "hundred", "ton", "load", "bunch", "couple", "flight", "train",
              "appointment", "call", "class", "lecture", "exam", "test", "date", "interview", "reservation",
              "booking", "deadline", "party", "shift", "presentation", "cold", "headache", "fever", "hangover",
              "doubt", "suggestion", "request", "issue", "thought", "plan", "way", "day", "week", "weekend",
              "time", "break", "word", "sec", "while", "clue"}
# First-person and second-person words a value must not carry into a third-person fact.
_PERSONAL = {"i", "i'm", "i've", "i'd", "me", "mine", "myself", "you", "your", "yours", "we", "our", "us", "ours",
             "ya", "u"}
_POSSESSIVE = {"my": "their", "My": "their"}
_FILLERS = {"lol", "lmao", "haha", "hahaha", "hehe", "btw", "tbh", "rn", "omg", "xd", "ngl", "imo", "fr", "jk",
            "lolol", "ha", "xx", ":)", ":(", ":d", ";)"}
_TRAILING = re.compile(r"\s+(?:now|these days|at the moment|right now|recently|lately|again|too|as well|"
                       r"last (?:week|month|year|night)|this (?:week|month|year)|yesterday|today|a lot|so much|"
                       r"very much|currently|originally|full[- ]time|part[- ]time|mostly)$", re.IGNORECASE)
# Words that may join the capitalised words of a name ("Newcastle upon Tyne", "Vincent van Gogh").
_PARTICLES = {"of", "de", "da", "do", "dos", "das", "del", "della", "di", "du", "la", "le", "van", "von", "der", "den",
              "upon", "am", "bin", "al", "el", "y", "on", "sur", "les"}
# Capitalised words that do not start a name.
_NOT_NAMES = {"i", "i'm", "i've", "i'd", "my", "we", "you", "he", "she", "they", "it", "the", "a", "an", "this",
              "that", "not", "no", "yes", "ok", "okay", "monday", "tuesday", "wednesday", "thursday", "friday",
              "saturday", "sunday", "mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays",
              "sundays", "january", "february", "march", "april", "june", "july", "august", "september", "october",
              "november", "december", "there", "here", "sorry", "just", "so", "very", "really", "too", "also"}
# Words that cannot be (part of) a name or place when the writer does not use capitals.
_NOT_VALUES = {"a", "an", "the", "my", "your", "our", "his", "her", "their", "this", "that", "these", "those", "some",
               "any", "no", "not", "so", "too", "very", "really", "fear", "hope", "denial", "peace", "sin", "luxury",
               "poverty", "misery", "comfort", "harmony", "moment", "past", "present", "future", "dream", "bubble",
               "hell", "heaven", "pain", "later", "back", "soon", "anytime", "whenever", "maybe", "tomorrow",
               "tonight", "now", "then", "here", "there", "home", "night", "nights", "weekends", "myself", "yourself",
               "on", "in", "at", "to", "for", "with", "and", "or", "but", "if", "when", "what", "how", "why", "it",
               "that's", "it's", "fine", "good", "okay", "ok", "sure", "done", "tired", "sorry", "back", "mad",
               "accounting", "marketing", "sales", "hr", "it", "work", "school", "class", "office", "bed", "town"}
_ALLERGENS = {
    "peanut", "nut", "almond", "cashew", "walnut", "pecan", "hazelnut", "pistachio", "macadamia", "shellfish",
    "shrimp", "prawn", "crab", "lobster", "clam", "mussel", "oyster", "scallop", "seafood", "fish", "salmon", "tuna",
    "cod", "egg", "milk", "dairy", "lactose", "cheese", "wheat", "gluten", "soy", "soya", "sesame", "mustard",
    "celery", "lupin", "corn", "kiwi", "strawberry", "banana", "apple", "peach", "tomato", "citrus", "orange",
    "lemon", "mango", "avocado", "pineapple", "cherry", "garlic", "onion", "chocolate", "cocoa", "coconut",
    "chickpea", "lentil", "pea", "bean", "legume", "cinnamon", "msg", "sulfite", "sulphite", "penicillin",
    "amoxicillin", "antibiotic", "aspirin", "ibuprofen", "nsaid", "sulfa", "codeine", "morphine", "medication",
    "latex", "nickel", "wool", "fragrance", "perfume", "pollen", "grass", "hay", "ragweed", "birch", "mold", "mould",
    "dust", "mite", "cat", "dog", "horse", "rabbit", "hamster", "guinea", "feather", "bee", "wasp", "hornet",
    "sting", "insect", "mosquito", "ant", "cockroach", "chlorine", "iodine", "anesthesia", "anaesthesia",
    "anesthetic", "anaesthetic", "dye", "pet", "animal", "dander", "oat", "barley", "rye", "buckwheat", "sulfur",
}
_JOBS = {
    "engineer", "developer", "programmer", "designer", "nurse", "doctor", "physician", "surgeon", "dentist",
    "teacher", "professor", "lecturer", "tutor", "student", "lawyer", "attorney", "solicitor", "accountant",
    "architect", "manager", "consultant", "analyst", "scientist", "researcher", "writer", "author", "journalist",
    "editor", "artist", "painter", "musician", "photographer", "chef", "cook", "baker", "waiter", "waitress",
    "bartender", "barista", "cashier", "driver", "pilot", "mechanic", "electrician", "plumber", "carpenter",
    "farmer", "pharmacist", "therapist", "psychologist", "psychiatrist", "paramedic", "firefighter", "officer",
    "soldier", "librarian", "salesperson", "recruiter", "entrepreneur", "founder", "ceo", "cto", "cfo", "coo",
    "administrator", "clerk", "secretary", "receptionist", "translator", "interpreter", "economist", "statistician",
    "marketer", "vet", "veterinarian", "caregiver", "nanny", "cleaner", "janitor", "technician", "biologist",
    "chemist", "physicist", "mathematician", "historian", "actor", "actress", "dancer", "singer", "composer",
    "producer", "director", "coach", "trainer", "athlete", "banker", "trader", "broker", "realtor", "buyer",
    "midwife", "surveyor", "optician", "paralegal", "hairdresser", "barber", "tailor", "welder", "butcher",
    "firefighter", "detective", "sergeant", "professional", "intern", "freelancer", "contractor", "auditor",
    "advisor", "adviser", "counselor", "counsellor", "coordinator", "supervisor", "specialist", "assistant",
}
# Modifiers that say the job is not (or not yet, or no longer) the speaker's work.
_NOT_JOB = {"former", "ex", "retired", "aspiring", "wannabe", "future", "failed", "amateur", "hobby", "home",
            "terrible", "bad", "good", "great", "awful", "lousy", "decent", "horrible", "big", "huge", "proud",
            "fellow", "fake", "wannabe", "would-be", "armchair", "backseat", "real", "total", "born"}
# Sarcasm says the opposite of the words: nothing is read from such a sentence.
_SARCASM = re.compile(r"\b(?:said no ?one ever|said nobody ever|yeah,? right|oh,? (?:great|joy|wonderful|fantastic|"
                      r"lovely|perfect)|just what i needed|lucky me|just kidding|kidding|jk)\b|/s\b|\bnot!",
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
_AFTER = re.compile(r"^\s*,?\s*(?:I think|I guess|I suppose|I believe|I'm not sure|maybe|probably|perhaps|or not|"
                    r"or something|anymore|any more|no more|jk|just kidding|not)\b", re.IGNORECASE)
_QUESTION_START = re.compile(r"^(?:do|does|did|am|is|are|was|were|can|could|would|should|will|shall|have|has|had|"
                             r"what|why|how|where|when|who|whom|which|whose|isn't|aren't|don't|didn't|doesn't|"
                             r"may|might|wanna)\b", re.IGNORECASE)
_TAG_QUESTION = re.compile(r",\s*(?:right|no|yeah|yes|ok|okay|correct|huh|eh|isn't it|don't I|didn't I|am I not|"
                           r"aren't I|or not|or what)\s*\?+$", re.IGNORECASE)
_CALLED = re.compile(r"^(?:an?|the|this)\s+(?:[\w-]+\s+){0,2}(?:called|named)\s+(?P<name>.+)$", re.IGNORECASE)
_COUNT = r"(?:an?|one|two|three|four|five|six|\d+|some|several)"
_AND_COUNT = re.compile(r"\s+and\s+(?=" + _COUNT + r"\s)", re.IGNORECASE)
_LEADING_COUNT = re.compile(r"^(?P<count>" + _COUNT + r")\s+", re.IGNORECASE)
_FOLLOW_AT = re.compile(r"^\s+(?:at|for)\s+" + _VALUE + _END, _FLAGS)
_FOLLOW_AS = re.compile(r"^\s+as\s+(?P<article>an?)\s+" + _VALUE + _END, _FLAGS)
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE)
_WORD = re.compile(r"[\w'-]+")


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
        taken_back = index + 1 < len(parts) and _TAKEN_BACK.match(parts[index + 1]) is not None
        if taken_back or _SARCASM.search(sentence) or _QUESTION_START.match(sentence) \
                or _TAG_QUESTION.search(sentence):
            continue
        found.extend(reader.read(sentence))
    return found


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

        for pattern in PATTERNS:
            for match in pattern.regex.finditer(sentence):
                if free(match) and self._stated(sentence, match, question_from):
                    made = list(self._candidates(pattern, match, sentence))
                    if made:
                        taken.append((match.start(), match.end(), made))
        for match in MY_X_IS.finditer(sentence):
            if free(match) and self._stated(sentence, match, question_from):
                made = self._my_x_is(match)
                if made is not None:
                    taken.append((match.start(), match.end(), [made]))
        return [c for _, _, made in sorted(taken, key=lambda item: item[0]) for c in made]

    def _stated(self, sentence: str, match: re.Match[str], question_from: int | None) -> bool:
        """Whether a match is a plain statement: not in a question, not after a negation or a hedge in its
        clause, not in quotes, not taken back right after."""
        start = match.start()
        if question_from is not None and start >= question_from:
            return False
        if sentence.count('"', 0, start) % 2:
            return False
        if _HEDGE.search(sentence, clause_start(sentence, start), start):
            return False
        return _AFTER.match(sentence, match.end()) is None

    def _candidates(self, pattern: Pattern, match: re.Match[str], sentence: str) -> Iterator[Candidate]:
        attribute = pattern.attribute
        raw = match.group("value")
        groups = match.groupdict()
        if attribute == "occupation" and groups.get("job") is not None:
            raw = groups["job"]
        shaped = _SHAPERS[attribute](self, raw)
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
        if attribute == "works_at":
            job = _FOLLOW_AS.match(rest)
            if job and (title := _job(self, job.group("value"))):
                yield self._candidate(f"{self.subject} works as {job.group('article').lower()} {title[0][0]}",
                                      "occupation", title[0][0], None)
        if attribute == "occupation":
            employer = _FOLLOW_AT.match(rest)
            if employer and (where := _employer(self, employer.group("value"))):
                yield self._candidate(f"{self.subject} works at {where[0][0]}", "works_at", where[0][0], None)

    def _candidate(self, content: str, attribute: str, value: str, polarity: str | None) -> Candidate:
        return Candidate(content=unmask(" ".join(content.split())), evidence=[self.episode], attribute=attribute,
                         value=unmask(value), polarity=polarity)

    def _my_x_is(self, match: re.Match[str]) -> Candidate | None:
        key_text = " ".join(match.group("key").split())
        key = key_text.lower()
        last = key.split()[-1]
        if key in MY_X_SKIP or last in MY_X_SKIP_LAST or key.startswith("name") or any(
                w in _PERSONAL for w in key.split()):
            return None
        value = _clean(match.group("value"))
        if value is None:
            return None
        kind = _DATA_KEYS.get(last) or _DATA_KEYS.get(last.removesuffix("'s"))
        if _FAVOURITE.match(key):
            kind = "short"
        elif key.endswith("'s name") or key.endswith(" name"):
            kind = "name"
        checked = _my_value(self, value, kind)
        if checked is None:
            return None
        return self._candidate(f"{self.possessive} {key_text} is {checked}", f"my:{key}", checked, None)


def _question_clause(sentence: str) -> int | None:
    """Return where the question of a sentence that ends with one starts (its last clause), else None."""
    if not sentence.rstrip("\"') ").endswith("?"):
        return None
    return clause_start(sentence, len(sentence))


def _verb(verb: str) -> str:
    if verb.startswith(("don't", "dont", "do not")):
        return "doesn't " + verb.split()[-1]
    return _VERBS.get(verb, verb)


def _clean(value: str) -> str | None:
    """Return a value without quotes, fillers and trailing time words; None if nothing (or too much) is left."""
    value = value.strip().strip("\"'")
    tokens = value.split()
    while tokens and tokens[-1].lower() in _FILLERS:
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


def _is_proper(token: str) -> bool:
    """Whether a token reads as (part of) a name: capitalised ("Berlin", "McDonald's", "U.S.", "3M"), or a
    brand written with an inner capital ("iPhone")."""
    if token.lower().strip("'") in _NOT_NAMES:
        return False
    first = token[0]
    if first.isupper():
        return True
    if first.isdigit():
        return any(c.isupper() for c in token)
    return first.isalpha() and any(c.isupper() for c in token[1:])


def _proper_run(value: str, *, cased: bool, allow_the: bool = True, max_words: int = 6) -> str | None:
    """Return the name a value starts with (a run of capitalised words, with "the" before and particles inside),
    or None. Without capitals in the text, a short value free of common words stands for itself."""
    tokens = value.split()
    if not cased:
        if not tokens or len(tokens) > 3 or any(t.lower() in _NOT_VALUES or t.lower() in _PERSONAL for t in tokens):
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
        if _is_proper(token):
            names += 1
        elif names and following and _is_proper(following) and (token.lower() in _PARTICLES or token == "&"):
            pass
        else:
            break
        out.append(token)
        i += 1
    if not names or names > max_words:
        return None
    rest = tokens[i:]
    # "Procter and Gamble", "Berlin or Potsdam": one name or two, it cannot tell.
    if len(rest) >= 2 and rest[0].lower() in ("and", "or") and _is_proper(rest[1]):
        return None
    return " ".join(out)


def _place(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None or value.lower().endswith(("anymore", "any more")):
        return []
    run = _proper_run(value, cased=reader.cased)
    return [(run, None)] if run else []


def _employer(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None:
        return []
    called = _CALLED.match(value)
    return _place(reader, called.group("name") if called else value)


def _name(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None:
        return []
    if not reader.cased:
        tokens = value.split()
        if len(tokens) > 2 or any(t.lower() in _NOT_VALUES or t.lower() in _PERSONAL or t.lower() in _NOT_NAMES
                                  or not t.replace("-", "").replace("'", "").isalpha()
                                  or t.lower().endswith(("ed", "ing", "ly")) for t in tokens):
            return []
        return [(value, None)]
    run = _proper_run(value, cased=True, allow_the=False, max_words=4)
    return [(run, None)] if run else []


def _age(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    return [(raw, None)] if raw.isdigit() and 1 <= int(raw) <= 120 else []


def _singular(word: str) -> str:
    word = word.lower().replace(MASK, ".")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _allergens(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None:
        return []
    out = []
    for part in re.split(r"\s*,\s*|\s+(?:and|or|&)\s+", value):
        words = [w for w in part.split() if w.lower() not in ("a", "an", "the", "some", "most", "all", "both")]
        if words and any(_singular(w) in _ALLERGENS for w in words) and not any(
                w.lower() in _PERSONAL for w in words):
            out.append((" ".join(words), None))
    return out


def _things(reader: _Reader, raw: str) -> list[tuple[str, str | None]]:
    value = _clean(raw)
    if value is None:
        return []
    out: list[tuple[str, str | None]] = []
    for i, part in enumerate(_AND_COUNT.split(value)):
        count = None
        if i:
            leading = _LEADING_COUNT.match(part)
            count = leading.group("count") if leading else None
            part = part[leading.end():] if leading else part
        thing = _personal_free(part)
        if thing is None:
            continue
        first = [_singular(w) for w in _WORD.findall(thing.lower())]
        if not first or first[0] in _VAGUE_HAS or first[0] in ("of",) or len(first) > 6:
            continue
        out.append((thing, count))
    return out


def _personal_free(value: str) -> str | None:
    """Return a value with "my" made "their"; None if it still speaks in the first or second person."""
    tokens = [_POSSESSIVE.get(t, t) for t in value.split()]
    if not tokens or any(t.lower().strip(".,!?") in _PERSONAL or t.lower() == "my" for t in tokens):
        return None
    return " ".join(tokens)


def _opinion(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None:
        return []
    value = re.sub(r"^both\s+", "", value, flags=re.IGNORECASE)
    lowered = value.lower()
    if lowered in _VAGUE_OBJECTS or lowered.split()[0] in _VAGUE_OBJECTS or len(value.split()) > 6:
        return []
    free = _personal_free(value)
    return [(free, None)] if free else []


def _job(reader: _Reader, raw: str) -> list[tuple[str, None]]:
    value = _clean(raw)
    if value is None:
        return []
    words = value.lower().split()
    if len(words) > 3 or _singular(words[-1]) not in _JOBS and words[-1] not in _JOBS \
            or any(w in _NOT_JOB or w in _PERSONAL or w in _NOT_VALUES for w in words):
        return []
    return [(value.lower() if value.lower() != value and value.isupper() is False and not
             any(c.isupper() for c in value[1:]) else value, None)]


def _my_value(reader: _Reader, value: str, kind: str | None) -> str | None:
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
        names = _name(reader, value)
        return names[0][0] if names and names[0][0] == value else None
    if kind == "short":
        lowered = plain.lower()
        if len(tokens) > 5 or lowered.split()[0] in _VAGUE_OBJECTS or lowered in _VAGUE_OBJECTS:
            return None
        return _personal_free(value)
    # Any other key ("my car", "my brother", "my doctor"): only a value that names something.
    if re.fullmatch(r"\d+(?:" + MASK + r"\d+)?\s+(?:years?|months?)\s+old", value, re.IGNORECASE):
        return value
    if reader.cased and _proper_run(value, cased=True) == value:
        return value
    article = re.match(r"^(?:an?)\s+(?P<rest>.+)$", value, re.IGNORECASE)
    if article and len(tokens) <= 6:
        rest = article.group("rest").lower().split()
        if rest[0] not in _NOT_JOB and rest[0] not in {"nightmare", "mess", "joke", "disaster", "pain", "bit",
                                                        "lot", "little", "total", "complete", "real", "huge",
                                                        "big", "bad", "good", "great", "very", "pretty"}:
            return _personal_free(value)
    return None


_SHAPERS: dict[str, Callable[[_Reader, str], list]] = {
    "lives_in": _place, "from": _place, "partner": _place, "works_at": _employer, "name": _name, "age": _age,
    "allergic_to": _allergens, "has": _things, OPINION: _opinion, "occupation": _job,
}
