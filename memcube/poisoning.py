"""Poisoning defence: a transparent score of how much a text reads as instructions aimed at the agent.

Memory is a channel into every later prompt: a stored "ignore your previous instructions", a fake
`<|im_start|>system` turn, or a line dressed as one of our own context sections is served back to the model as
if it were trusted context (memory poisoning, as in A-MemGuard, MINJA, AgentPoison). `score_text` is a pure
function from text to a score and the signals that made it: each rule below has a weight, a rule counts once,
and the score is the sum. No model, no download: every reason names the rule and quotes what matched.

`screen` compares the score with MEMCUBE_POISON_THRESHOLD scaled by the trust of the text's origin (who wrote
it: user, agent, tool, web, ...; MEMCUBE_POISON_TRUST): the less trusted the origin, the lower the bar. Above
it, the write is kept, with status `quarantined` and the verdict in its provenance (`cube.create_cubes`).

It can be evaded (README, "Poisoning defence"): rules see phrasing, not intent. A paraphrase with none of the
cues, an instruction in another language, or a fact that is simply false and plausible passes; a discussion
that quotes an attack without the cues of a discussion may be quarantined.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

# Who wrote a text. A message's role maps onto these (assistant → agent); an API write may say (`origin`).
ORIGINS = ("user", "system", "agent", "import", "tool", "document", "web", "unknown")
# The default of MEMCUBE_POISON_TRUST: the threshold is multiplied by the origin's trust.
DEFAULT_TRUST: dict[str, float] = {"user": 1.0, "system": 1.0, "agent": 0.8, "import": 0.8, "unknown": 0.8,
                                   "tool": 0.6, "document": 0.6, "web": 0.4}
ROLE_ORIGIN = {"user": "user", "assistant": "agent", "system": "system", "tool": "tool"}
# The section titles and line shapes memcube.context renders (tests check that they stay in step): text that
# carries them is a context block being written back, or one forged to be taken for ours.
CONTEXT_TITLES = ("# Core memory", "# Lessons", "# Recalled memories", "# Working memory")
MAX_SCANNED_CHARS = 20_000  # longer texts are scored on their start and end: the cost stays bounded

_F = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    pattern: re.Pattern[str]
    why: str
    # Whether a text that is visibly *about* such phrases (a discussion, a quotation, a tutorial) counts less.
    quotable: bool = True


def _r(name: str, weight: float, pattern: str, why: str, *, quotable: bool = True, flags: int = _F) -> Rule:
    return Rule(name, weight, re.compile(pattern, flags), why, quotable)


_IGNORE = r"(?:ignore|disregard|forget|override|bypass|skip|abandon|set\s+aside|discard|drop|throw\s+out|neglect)"
_PRIOR = (r"(?:all|any|every|the|your|my|its|previous|prior|above|earlier|preceding|foregoing|existing|original|"
          r"initial|old|former|system|developer|safety|these|those|other)")
_ORDERS = (r"(?:instructions?|prompts?|rules?|directives?|guidelines?|guardrails?|constraints?|programming|"
           r"orders?|commands?|polic(?:y|ies)|restrictions?|settings|context|messages?|training|system\s+message)")
_AI = (r"(?:ai|a\.i\.|assistant|agent|model|llm|language\s+model|chat\s?bot|gpt|chatgpt|claude|gemini|copilot|"
       r"bot|memory\s+system|retrieval\s+system)")

RULES: tuple[Rule, ...] = (
    # Overriding what the agent was told.
    _r("override", 1.0, _IGNORE + r"\b(?:\W+\w+){0,3}?\W+" + _PRIOR + r"\b(?:\W+\w+){0,3}?\W+" + _ORDERS + r"\b",
       "tells the agent to drop its instructions"),
    _r("new_instructions", 0.8, r"\b(?:new|updated|revised|real|actual|true|hidden|secret|additional|override)\s+"
       r"(?:system\s+)?(?:instructions?|directives?|orders|rules|prompt)\s*(?::|follow|are|is)\b",
       "announces new instructions"),
    _r("role_reassign", 0.8, r"\b(?:you\s+are\s+now|you're\s+now|from\s+now\s+on,?\s+you\s+(?:are|will|must|shall|"
       r"should)|you\s+will\s+now\s+(?:act|behave|respond|answer)|act\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?"
       r"(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|evil|dan\b|different)|pretend\s+(?:to\s+be|you\s+are)\s+"
       r"(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|evil|dan\b|system|developer|admin)|enter\s+"
       r"(?:developer|debug|god|admin|dan|jailbreak|maintenance)\s+mode|(?:developer|debug|god|dan|jailbreak)\s+"
       r"mode\s+(?:is\s+)?(?:enabled|activated|on))", "reassigns the agent's role"),
    _r("addressed_to_ai", 0.7, r"(?:\b(?:note|message|instructions?|reminder|attention|directive|memo|notice)\s+"
       r"(?:to|for)\s+(?:the\s+|any\s+|all\s+)?" + _AI + r"s?\b|\b(?:dear|hey|hello|attention|listen)[,\s]+"
       r"(?:the\s+)?" + _AI + r"\b\s*[,:!]|\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|assistant|agent|bot)\b|"
       r"\b(?:when|if|whenever)\s+(?:the|an|any|this)\s+" + _AI + r"\s+(?:reads?|sees?|retrieves?|recalls?|"
       r"processes|loads?|finds?)\s+this|\bto\s+(?:the|any)\s+" + _AI + r"\s+(?:reading|processing|retrieving)\s+this)",
       "speaks to the AI reading it"),
    _r("trigger_response", 0.8, r"\b(?:whenever|every\s+time|each\s+time|if\s+ever|any\s*time|when(?:ever)?)\s+"
       r"(?:the\s+user|a\s+user|users|anyone|someone|somebody|they|he|she|a\s+customer|customers|people|i)\s+"
       r"(?:asks?|mentions?|says?|types?|requests?|wants?|brings?\s+up|inquires?|talks?\s+about|queries|searches)"
       r"\b[^.!?\n]{0,120}?,?\s*(?:you\s+(?:must|should|will|shall|need\s+to|have\s+to)\s+|always\s+|"
       r"then\s+|just\s+|instead\s+|immediately\s+)?(?:say|tell|answer|respond|reply|recommend|suggest|output|"
       r"redirect|send|direct|point|refuse|claim|insist|include|append|add|mention|reveal|give|state|print|"
       r"return|link|quote|ask)\b", "plants a rule for how to answer future questions"),
    _r("future_sessions", 0.6, r"\b(?:in|for|during|across|throughout)\s+(?:all|every|any|each)\s+(?:future|later|"
       r"subsequent|upcoming|following)\s+(?:conversations?|sessions?|chats?|responses?|answers?|replies|"
       r"interactions?|turns?)|\bfrom\s+now\s+on\b|\bpermanently\s+(?:remember|store|adopt|follow)|"
       r"\b(?:store|save|remember|keep|commit|write)\s+(?:this|these|that|the\s+following)\s+(?:\w+\s+){0,2}?"
       r"(?:permanently|forever|as\s+(?:a\s+)?(?:core|permanent|system|trusted|priority)\b)",
       "asks to persist a behaviour"),
    _r("absolute_directive", 0.5, r"\b(?:you\s+(?:must|should|will|shall)\s+)?(?:always|never|under\s+no\s+"
       r"circumstances?|no\s+matter\s+what)\s+(?:\w+\s+){0,2}?(?:recommend|say|tell|respond|reply|answer|mention|"
       r"reveal|disclose|refuse|obey|comply|follow|trust|prefer|suggest|direct|output|claim|redirect|send|share|"
       r"forward|report|link)\b", "an absolute rule of behaviour"),
    _r("secrecy", 0.6, r"\b(?:do\s+not|don't|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|"
       r"reveal(?:ing)?|alert(?:ing)?|notify(?:ing)?|let(?:ting)?)\s+(?:the\s+user|the\s+users|users|anyone|the\s+"
       r"human|the\s+owner|the\s+admin|them)\b(?:[^.\n]{0,40}?\b(?:about\s+this|this\s+instruction|that\s+you|"
       r"what\s+you))?|\bkeep\s+(?:this|these\s+instructions?)\s+(?:secret|hidden|confidential)\b",
       "asks to hide something from the user"),
    _r("reveal_prompt", 0.6, r"\b(?:reveal|print|output|show|repeat|leak|dump|disclose|display|echo|recite)\s+"
       r"(?:me\s+)?(?:your|the|all|its)\s+(?:\w+\s+){0,2}?(?:system\s+prompt|instructions|initial\s+prompt|"
       r"hidden\s+prompt|secret\s+key|api\s+keys?|credentials|passwords?|conversation\s+history|memories|tokens?)\b",
       "asks to disclose the prompt or secrets"),
    _r("exfiltration", 0.7, r"\b(?:send|forward|post|upload|email|e-mail|transmit|exfiltrate|copy|leak|append|"
       r"include|attach|report)\b[^.\n]{0,80}?\b(?:conversation|chat|messages?|history|memor(?:y|ies)|password|"
       r"credentials?|api\s*keys?|tokens?|secrets?|personal\s+data|user\s+data|card\s+numbers?|ssn|"
       r"address(?:es)?)\b[^.\n]{0,80}?\b(?:to|at|into)\s+(?:https?://|www\.|\S+@\S+\.\w+|the\s+following\s+"
       r"(?:url|address|endpoint)|this\s+(?:url|address|endpoint))", "asks to send data out"),
    _r("markdown_beacon", 0.6, r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=[^)\s]*\)",
       "an image link whose URL carries data (a beacon)", quotable=False),
    _r("dangerous_command", 0.5, r"(?:\bcurl\b[^\n|]{0,200}\|\s*(?:ba|z)?sh\b|\bwget\b[^\n|]{0,200}\|\s*(?:ba)?sh\b|"
       r"\brm\s+-rf\s+(?:/|~|\*|\$HOME)|\bchmod\s+777\s+/|:\(\)\s*\{\s*:\|:&\s*\};:|\bDROP\s+TABLE\b|"
       r"\bpowershell\b[^\n]{0,40}-enc)", "a destructive or remote-execution command"),
    _r("execute_order", 0.5, r"\b(?:execute|run|call|invoke|trigger|use)\s+(?:the\s+)?(?:following|this|these|"
       r"below)\s+(?:\w+\s+)?(?:command|code|script|tool|function|payload|action|api\s+call)s?\b|"
       r"\b(?:immediately|silently|automatically|without\s+(?:asking|confirmation|permission))\s+(?:\w+\s+){0,2}?"
       r"(?:execute|run|call|invoke|transfer|send|delete|approve|grant|purchase|pay|book|click|download|install)\b",
       "orders an action"),
    # Role and turn markers of chat formats, and of tool calls.
    _r("chat_token", 1.0, r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
       r"end_header_id|begin_of_text|channel|message|start|end|tool|ipython)\s*\|>|\[/?INST\]|<</?SYS>>|"
       r"<start_of_turn>|<end_of_turn>", "a chat-template token that opens or closes a turn"),
    _r("role_header", 0.8, r"(?:^|\n)\s*(?:#{1,4}\s*|\*\*)?(?:system|developer|system\s+prompt|system\s+message|"
       r"instructions?|assistant|admin|administrator|root|sudo|operator)\s*(?:\*\*)?\s*(?::|\]|>)"
       r"|(?:^|\n)\s*\[(?:system|developer|admin|instructions?|assistant)(?:\s+(?:note|message|override))?\]"
       r"|<\s*/?\s*(?:system|developer|sys|instructions?|admin|assistant|im_start)\s*>",
       "a system, developer or assistant turn header"),
    _r("transcript_turn", 0.3, r"(?:^|\n)\s*(?:human|user|assistant|ai|bot)\s*:\s*\S[^\n]*\n\s*(?:human|user|"
       r"assistant|ai|bot)\s*:", "a forged dialogue of turns"),
    _r("tool_call", 0.6, r"<\s*/?\s*(?:tool_call|tool_use|function_call|function_calls|invoke|tool_code|"
       r"antml:invoke|function)\b[^>]*>|\"(?:tool_calls|function_call|tool_use)\"\s*:|\{\s*\"name\"\s*:\s*\"[\w.-]+"
       r"\"\s*,\s*\"(?:arguments|parameters|args|input)\"\s*:|(?:^|\n)\s*Action\s*:\s*\w+\s*\n\s*Action\s+Input\s*:|"
       r"\bfunctions\.\w+\s*\(", "tool or function-call syntax"),
    # Our own context format written back.
    _r("context_heading", 1.0, r"(?:^|\n)\s*(?:" + "|".join(re.escape(t) for t in CONTEXT_TITLES) + r")\s*(?:\n|$)",
       "a heading of MemCube's own context block", quotable=False),
    _r("context_lines", 0.6, r"(?:^|\n)\s*\[\d{4}-\d{2}-\d{2}\]\s*\n\s*-\s+\S|(?:^|\n)\s*\[(?:persona|human|user|"
       r"profile|system|pinned)\]\s+\S|(?:^|\n)\s*Scratchpad:\s+\S",
       "lines shaped like MemCube's recalled memories or core blocks", quotable=False),
    # Hidden markup.
    _r("html_comment", 0.5, r"<!--.*?-->", "an HTML comment (hidden when rendered)", quotable=False),
    _r("invisible_markup", 0.7, r"style\s*=\s*[\"'][^\"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|"
       r"font-size\s*:\s*0|opacity\s*:\s*0(?:\.0+)?\s*[;\"']|color\s*:\s*(?:white|#fff\b|#ffffff|transparent))|"
       r"<[a-z]+[^>]*\shidden\b[^>]*>|<\s*(?:noscript|template)\b|\\(?:color\{white\}|phantom\{)",
       "markup that hides text from a human reader", quotable=False),
    _r("encoding_order", 0.6, r"\b(?:decode|decrypt|deobfuscate|unscramble|reverse|translate)\s+(?:and\s+"
       r"(?:follow|execute|obey|run)\s+)?(?:this|the\s+following|the\s+text|it|below)\b[^.\n]{0,40}?"
       r"(?:base64|rot13|rot-13|hex|binary|cipher|backwards)?|\b(?:base64|rot13|rot-13|hex)[- ]?(?:encoded|"
       r"decoded)?\s+(?:instructions?|payload|commands?|message)\b", "asks to decode hidden text"),
)

_ZERO_WIDTH = re.compile("[\u200b\u2060-\u2064\u180e\u00ad\ufeff\u034f\u115f\u1160\u3164]")
_JOINERS = re.compile("(?<=[A-Za-z])[\u200c\u200d](?=[A-Za-z])")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,}|(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])")
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*]){5,}[A-Za-z]\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_QUOTED = re.compile(r"[\"“”'‘’`«»]")
# Cues of a text that is about attacks or prompts rather than one: a quoted phrase among them counts less.
_DISCUSSION = re.compile(r"\b(?:prompt\s+injection|jailbreak(?:s|ing)?|injection\s+attacks?|attackers?|"
                         r"phishing|red[- ]team(?:ing|ers)?|researchers?|paper|example|e\.g\.|for\s+instance|"
                         r"such\s+as|classic|payloads?|filter|detect(?:s|ed|or|ion)?|security|ctf|training|"
                         r"workshop|lecture|article|blog|tutorial|docs|documentation|regex|unit\s+tests?|"
                         r"benchmark|dataset|tokenizer|chat\s+template|format|spec|rfc|scam|warn(?:ed|ing)?|"
                         r"lol|funny|meme|novel|story|character|scene|game|play(?:ing)?|role[- ]?play|dm)\b",
                         re.IGNORECASE)
DISCUSSION_FACTOR = 0.4


@dataclass(frozen=True)
class Signal:
    """One rule that fired: its name, the weight it added, and what it matched (shortened)."""

    name: str
    weight: float
    evidence: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.name, "weight": round(self.weight, 3), "evidence": self.evidence, "why": self.why}


@dataclass(frozen=True)
class Verdict:
    """A text's score against the threshold its origin sets."""

    score: float
    threshold: float
    origin: str
    trust: float
    signals: tuple[Signal, ...] = field(default=())

    @property
    def quarantined(self) -> bool:
        return bool(self.signals) and self.score >= self.threshold

    @property
    def reason(self) -> str:
        names = ", ".join(f"{s.name} ({s.weight:g})" for s in self.signals)
        return (f"quarantined: reads as instructions to the agent (score {self.score:.2f} >= threshold "
                f"{self.threshold:.2f} for origin {self.origin}): {names}")

    def record(self) -> dict[str, Any]:
        """Return what provenance keeps of the verdict, for an admin to see why."""
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "origin": self.origin,
                "trust": self.trust, "signals": [s.as_dict() for s in self.signals]}


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _printable_share(text: str) -> float:
    return sum(c.isprintable() or c in "\n\t" for c in text) / max(len(text), 1)


def _decoded_payloads(text: str) -> list[tuple[str, str]]:
    """Return (how, text) for each base64 or hex blob that decodes to readable text."""
    out = []
    for match in _BASE64.finditer(text):
        blob = match.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("utf-8", errors="replace")
        if len(decoded) >= 12 and _printable_share(decoded) > 0.95 and sum(c.isalpha() or c == " " for c in decoded) \
                > 0.7 * len(decoded) and " " in decoded:
            out.append(("base64", decoded))
    for match in _HEX.finditer(text):
        digits = match.group(0).replace("\\x", "")
        try:
            decoded = bytes.fromhex(digits).decode("utf-8")
        except ValueError:
            continue
        if _printable_share(decoded) > 0.95 and " " in decoded:
            out.append(("hex", decoded))
    return out


def _hidden(text: str) -> list[Signal]:
    """Signals of characters a human reader does not see."""
    signals = []
    zero = _ZERO_WIDTH.findall(text) + _JOINERS.findall(text)
    if text.startswith("\ufeff"):
        zero = zero[1:]  # a byte order mark at the start is an encoding artefact
    if zero:
        signals.append(Signal("zero_width", 0.6 if len(zero) >= 2 else 0.3,
                              f"{len(zero)} zero-width character(s)", "invisible characters inside the text"))
    bidi = _BIDI.findall(text)
    if bidi:
        override = any(c in "\u202d\u202e" for c in bidi)
        signals.append(Signal("bidi_control", 0.8 if override else 0.4, f"{len(bidi)} bidirectional control(s)",
                              "reorders how the text is displayed"))
    tags = "".join(_TAGS.findall(text))
    if tags:
        smuggled = "".join(chr(ord(c) - 0xE0000) for c in tags if 0xE0020 <= ord(c) <= 0xE007E)
        if len(smuggled) >= 4:
            signals.append(Signal("tag_characters", 1.0, _clip(repr(smuggled), 60),
                                  "invisible Unicode tag characters spell out text"))
    return signals


def _views(text: str) -> list[tuple[str, str]]:
    """Return the text as rules read it: normalized, and de-obfuscated variants (prefix, text)."""
    plain = unicodedata.normalize("NFKC", _TAGS.sub("", text))
    plain = _BIDI.sub("", _JOINERS.sub("", _ZERO_WIDTH.sub("", plain)))
    views = [("", plain)]
    smuggled = "".join(chr(ord(c) - 0xE0000) for c in "".join(_TAGS.findall(text)) if 0xE0020 <= ord(c) <= 0xE007E)
    if smuggled:
        views.append(("hidden:", smuggled))
    spaced = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), plain)
    if spaced != plain:
        views.append(("spaced:", spaced))
    leet = plain.translate(_LEET)
    if leet != plain:
        views.append(("leet:", leet))
    for how, decoded in _decoded_payloads(plain):
        views.append((f"{how}:", decoded))
    return views


def score_text(text: str) -> tuple[float, list[Signal]]:
    """Return the poisoning score of a text (the sum of the weights of the rules that fired, each once) and the
    signals, strongest first. Pure and deterministic."""
    if len(text) > MAX_SCANNED_CHARS:
        half = MAX_SCANNED_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    signals = _hidden(text)
    discussion = None
    fired: dict[str, Signal] = {}
    for prefix, view in _views(text):
        for rule in RULES:
            if rule.name in fired and not prefix:
                continue
            match = rule.pattern.search(view)
            if match is None:
                continue
            weight = rule.weight
            if rule.quotable and not prefix:
                if discussion is None:
                    discussion = _DISCUSSION.search(view) is not None
                before = view[max(0, match.start() - 40):match.start()]
                if discussion and _QUOTED.search(before + match.group(0)[:1] + view[match.end():match.end() + 2]):
                    weight *= DISCUSSION_FACTOR
            found = Signal(prefix + rule.name if prefix else rule.name, weight, _clip(match.group(0)), rule.why)
            key = rule.name
            if key not in fired or fired[key].weight < weight:
                fired[key] = found
    if any(s.name.startswith(("base64:", "hex:")) for s in fired.values()):
        signals.append(Signal("encoded_payload", 0.4, "decoded text carries instructions",
                              "instructions hidden in an encoding"))
    elif any(s.name.startswith(("spaced:", "leet:")) for s in fired.values()):
        signals.append(Signal("obfuscated", 0.3, "matched only once letters were joined or de-leeted",
                              "obfuscated spelling of instructions"))
    signals.extend(fired.values())
    signals.sort(key=lambda s: -s.weight)
    return round(sum(s.weight for s in signals), 4), signals


def origin_of(*, source: str, origin: str | None = None, role: str | None = None) -> str:
    """Return who wrote a text: the `origin` given, else the message role's (assistant → agent), else `import`
    for imports, else `unknown`."""
    if origin:
        return origin
    if role and role in ROLE_ORIGIN:
        return ROLE_ORIGIN[role]
    if source == "import":
        return "import"
    return "unknown"


def trust_of(origin: str, trust: Mapping[str, float]) -> float:
    """Return an origin's trust from the table (MEMCUBE_POISON_TRUST); an origin not in it is `unknown`'s."""
    return float(trust.get(origin, trust.get("unknown", DEFAULT_TRUST["unknown"])))


def screen(text: str, *, origin: str, threshold: float, trust: Mapping[str, float]) -> Verdict:
    """Return the verdict on a text written by `origin`: quarantined when its score reaches the threshold times
    the origin's trust (and at least one rule fired)."""
    level = trust_of(origin, trust)
    score, signals = score_text(text)
    return Verdict(score=score, threshold=round(threshold * level, 4), origin=origin, trust=level,
                   signals=tuple(signals))
