"""Words the heuristic engine reads with: what may be a name, an allergen, a job, a datum, or is not a fact."""

from __future__ import annotations

MY_X_SKIP = {"name", "bad", "gosh", "god", "goodness", "life", "heart", "head", "advice", "plan", "guess", "pleasure"}
# "my biggest problem is", "my main point is": the last word of the key says it is not a fact.
MY_X_SKIP_LAST = {"point", "guess", "problem", "question", "concern", "fault", "pleasure", "turn", "mind", "feeling",
                  "impression", "idea", "thing", "hope", "day", "week", "worry", "fear", "bet", "plan", "dream",
                  "goal", "wish", "excuse", "reason", "answer", "issue", "take", "opinion", "view", "understanding"}
# Keys that name a datum, by their last word, and the shape its value must have.
DATA_KEYS = {
    "email": "email", "e-mail": "email", "mail": "email",
    "website": "link", "site": "link", "blog": "link", "homepage": "link", "github": "link", "gitlab": "link",
    "linkedin": "link", "portfolio": "link",
    "twitter": "handle", "instagram": "handle", "handle": "handle", "username": "handle", "tiktok": "handle",
    "number": "digits", "phone": "digits", "mobile": "digits", "cell": "digits", "code": "digits",
    "postcode": "digits", "address": "digits",
    "birthday": "date", "birthdate": "date", "anniversary": "date", "bday": "date", "b-day": "date", "dob": "date",
    "name": "name", "nickname": "name", "surname": "name",
    "pronouns": "short", "language": "short", "tongue": "short", "nationality": "short", "hometown": "short",
    "sign": "short", "type": "short", "size": "short", "major": "short", "religion": "short",
}
# Objects that make "I like X" about the conversation rather than a preference.
VAGUE_OBJECTS = {"it", "that", "this", "them", "you", "him", "her", "how", "what", "when", "where", "why", "who",
                  "so", "too", "the idea", "the way", "the thought", "the fact", "the feeling", "your", "yours", "these", "those", "me", "us", "everything",
                  "anything", "nothing", "something", "everyone", "anyone", "someone", "people", "ya", "u", "y'all"}
VAGUE_HAS = {"question", "feeling", "idea", "lot", "few", "bit", "chance", "good", "great", "hard", "quick",
              "minute", "moment", "second", "look", "problem", "meeting", "favor", "favour", "point", "busy",
              "million", "billion", "thousand", "hundred", "ton", "load", "bunch", "couple", "flight", "train",
              "appointment", "call", "class", "lecture", "exam", "test", "date", "interview", "reservation",
              "booking", "deadline", "party", "shift", "presentation", "cold", "headache", "fever", "hangover",
              "doubt", "suggestion", "request", "issue", "thought", "plan", "way", "day", "week", "weekend",
              "time", "break", "word", "sec", "while", "clue",
              # "a heart of gold", "a sweet tooth", "a big mouth": a body part said to be had is an idiom
              "heart", "tooth", "thumb", "mouth", "head", "brain", "soul", "nose", "stomach", "back", "mind",
              "temper", "memory", "sense", "gut",
              # what is shared in a conversation, or an event, rather than owned
              "story", "joke", "picture", "photo", "pic", "update", "news", "surprise", "tournament", "game", "match",
              "event", "show", "concert", "trip", "vacation", "holiday", "conference", "festival", "competition",
              "race", "performance", "gig", "recital", "session", "workshop", "recipe", "tip", "suggestion"}
# First-person and second-person words a value must not carry into a third-person fact.
PERSONAL = {"i", "i'm", "i've", "i'd", "me", "mine", "myself", "you", "your", "yours", "we", "our", "us", "ours",
             "ya", "u"}
FILLERS = {"lol", "lmao", "haha", "hahaha", "hehe", "btw", "tbh", "rn", "omg", "xd", "ngl", "imo", "fr", "jk",
            "lolol", "ha", "xx", ":)", ":(", ":d", ";)"}
# Words that may join the capitalised words of a name ("Newcastle upon Tyne", "Vincent van Gogh").
PARTICLES = {"of", "de", "da", "do", "dos", "das", "del", "della", "di", "du", "la", "le", "van", "von", "der", "den",
              "upon", "am", "bin", "al", "el", "y", "on", "sur", "les"}
# Capitalised words that do not start a name.
NOT_NAMES = {"i", "i'm", "i've", "i'd", "my", "we", "you", "he", "she", "they", "it", "the", "a", "an", "this",
              "that", "not", "no", "yes", "ok", "okay", "monday", "tuesday", "wednesday", "thursday", "friday",
              "saturday", "sunday", "mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays",
              "sundays", "january", "february", "march", "april", "june", "july", "august", "september", "october",
              "november", "december", "there", "here", "sorry", "just", "so", "very", "really", "too", "also"}
# Words that cannot be (part of) a name or place when the writer does not use capitals.
NOT_VALUES = {"a", "an", "the", "my", "your", "our", "his", "her", "their", "this", "that", "these", "those", "some",
               "any", "no", "not", "so", "too", "very", "really", "fear", "hope", "denial", "peace", "sin", "luxury",
               "poverty", "misery", "comfort", "harmony", "moment", "past", "present", "future", "dream", "bubble",
               "hell", "heaven", "pain", "later", "back", "soon", "anytime", "whenever", "maybe", "tomorrow",
               "tonight", "now", "then", "here", "there", "home", "night", "nights", "weekends", "myself", "yourself",
               "on", "in", "at", "to", "for", "with", "and", "or", "but", "if", "when", "what", "how", "why", "it",
               "that's", "it's", "fine", "good", "okay", "ok", "sure", "done", "tired", "sorry", "back", "mad",
               "accounting", "marketing", "sales", "hr", "it", "work", "school", "class", "office", "bed", "town"}
ALLERGENS = {
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
JOBS = {
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
NOT_JOB = {"former", "ex", "retired", "aspiring", "wannabe", "future", "failed", "amateur", "hobby", "home",
            "terrible", "bad", "good", "great", "awful", "lousy", "decent", "horrible", "big", "huge", "proud",
            "fellow", "fake", "wannabe", "would-be", "armchair", "backseat", "real", "total", "born"}
# Words after "a" that judge rather than name ("my boss is a nightmare").
EVALUATIVE = {"nightmare", "mess", "joke", "disaster", "pain", "bit", "lot", "little", "total", "complete", "real",
              "huge", "big", "bad", "good", "great", "very", "pretty"}
# Words that make "my X" more than a name for a thing ("my friend who is", "my skills and passions are").
NOT_IN_KEYS = {"who", "which", "that", "where", "when", "and", "or", "but", "is", "was", "are", "were", "be", "been",
               "have", "has", "had", "do", "does", "did", "not", "if", "so", "as", "just", "really", "own", "new",
               "old", "first"}
# Words that point at something said before ("I love his tech", "the connection it brings"): a fact holding one
# does not stand on its own.
ANAPHORIC = {"it", "its", "it's", "this", "that", "these", "those", "he", "him", "his", "she", "her", "hers",
             "they", "them", "their", "theirs", "there", "here", "which", "one", "ones", "same", "similar",
             "such", "other", "another", "else", "itself", "himself", "herself", "themselves"}
# Words that start a relative or other clause rather than an object ("the thing I love is awesome").
NOT_OBJECTS = {"is", "are", "was", "were", "be", "been", "has", "have", "had", "does", "did", "makes", "made",
               "gets", "gives", "keeps", "helps", "brings", "means", "feels", "looks", "sounds", "seems", "takes",
               "can", "could", "will", "would", "should", "must", "may", "might", "about", "when", "how", "what",
               "because", "so"}
# Words an object cannot end on: it was cut before its complement ("I love going| to this park").
DANGLING = {"to", "be", "being", "go", "going", "come", "coming", "get", "getting", "take", "taking", "make",
            "making", "put", "putting", "look", "looking", "listen", "listening", "talk", "talking", "hear", "say",
            "do", "doing", "have", "having", "spend", "spending", "see", "seeing", "keep", "keeping", "give",
            "giving", "find", "finding", "bring", "bringing", "try", "trying", "able", "throw", "throwing", "curl",
            "curling", "called", "named", "like", "with", "of", "for", "a", "an", "the", "and", "or", "so", "about",
            "into", "at", "in", "on", "from", "by", "watch", "watching", "feel", "feeling", "think", "thinking",
            "escape", "escaping", "stay", "staying", "use", "using", "start", "starting", "my", "our", "your",
            "not", "just", "some", "more", "most", "than", "as", "up", "out", "off", "lost", "time", "connection"}
