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
    # The weight when the rule matches twice or more (default: the same).
    repeated: float | None = None
    # Lower-case words one of which every match contains (with its whitespace as single spaces): a rule whose
    # words are all absent is not run, which makes scoring several times faster.
    needs: tuple[str, ...] = ()


def _r(name: str, weight: float, pattern: str, why: str, *, quotable: bool = True, repeated: float | None = None,
       flags: int = _F) -> Rule:
    return Rule(name, weight, re.compile(pattern, flags), why, quotable, repeated, NEEDS.get(name, ()))


NEEDS: dict[str, tuple[str, ...]] = {
    "override": ("instruction", "prompt", "rule", "directive", "direction", "guideline", "guardrail", "constraint",
                 "programming", "order", "command", "polic", "restriction", "context", "training", "forget",
                 "ignore", "disregard", "supersede", "precedence", "override"),
    "new_instructions": ("instruction", "directive", "order", "rule", "prompt", "task", "role", "goal", "purpose",
                         "objective", "job", "persona", "mission"),
    "role_reassign": ("you are", "you're", "from", "you will now", "act as", "pretend", "simulate", "mode",
                      "persona"),
    "addressed_to_ai": ("ai", "a.i.", "assistant", "agent", "model", "llm", "chat bot", "chatbot", "gpt", "claude",
                        "gemini", "copilot", "bot", "memory system", "retrieval system"),
    "assistant_directive": ("assistant", "agent", "ai", "model", "bot", "llm"),
    "trigger_response": ("user", "customer", "client", "anyone", "someone", "somebody", "visitor", "caller",
                         "patient", "people", "human", "reader"),
    "own_trigger": ("you",),
    "third_party_condition": ("user", "customer", "client", "anyone", "someone", "somebody", "visitor", "caller",
                              "patient", "people", "human", "reader"),
    "persist": ("store", "save", "remember", "keep", "commit", "write", "memori", "note", "permanently"),
    "future_sessions": ("future", "later", "subsequent", "upcoming", "following", "going forward"),
    "from_now_on": ("from now on",),
    "absolute_directive": ("always", "never", "under no circumstance", "no matter what"),
    "secrecy": ("not", "don't", "never", "without", "keep this"),
    "reveal_prompt": ("reveal", "print", "output", "show", "repeat", "leak", "dump", "disclose", "display", "echo",
                      "recite"),
    "exfiltration": ("send", "forward", "post", "upload", "email", "e-mail", "transmit", "exfiltrate", "copy", "leak",
                     "append", "include", "attach", "report"),
    "markdown_beacon": ("![",),
    "beacon_template": ("![",),
    "dangerous_command": ("curl", "wget", "rm -rf", "chmod", "drop table", "powershell", "/etc/passwd", ".exe",
                          ":()"),
    "execute_order": ("execute", "run", "call", "invoke", "trigger", "use"),
    "covert_action": ("immediately", "silently", "quietly", "secretly", "automatically", "without"),
    "chat_token": ("<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<start_of_turn>", "<end_of_turn>"),
    "role_header": (":", "]", ">"),
    "transcript_turn": (":",),
    "tool_call": ("<", "\"tool_calls\"", "\"function_call\"", "\"tool_use\"", "\"name\"", "action", "functions."),
    "context_heading": ("# core memory", "# lessons", "# recalled memories", "# working memory"),
    "context_lines": ("[", "scratchpad:"),
    "html_comment": ("<!--",),
    "invisible_markup": ("style", "hidden", "noscript", "template", "\\color{white}", "\\phantom{"),
    "encoding_order": ("decode", "decrypt", "deobfuscate", "unscramble", "reverse", "translate", "base64", "rot13",
                       "rot-13", "hex"),
}


_IGNORE = r"(?:ignore|disregard|forget|override|bypass|skip|abandon|set\s{1,40}aside|discard|drop|throw\s{1,40}out|neglect)"
_PRIOR = (r"(?:all|any|every|the|your|its|previous|prior|above|earlier|preceding|foregoing|existing|original|"
          r"initial|old|former|system|developer|safety|these|those|other|above-mentioned)")
_ORDERS = (r"(?:instructions?|prompts?|rules?|directives?|directions|guidelines?|guardrails?|constraints?|"
           r"programming|orders?|commands?|polic(?:y|ies)|restrictions?|context|training|system\s{1,40}message)")
_AI = (r"(?:ai|a\.i\.|assistant|agent|model|llm|language\s{1,40}model|chat\s?bot|gpt|chatgpt|claude|gemini|copilot|"
       r"bot|memory\s{1,40}system|retrieval\s{1,40}system)")

_THIRD = (r"(?:the\s{1,40}user|a\s{1,40}user|users|the\s{1,40}customer|a\s{1,40}customer|customers|the\s{1,40}client|clients|anyone|someone|"
          r"somebody|any\s{1,40}user|visitors?|callers?|the\s{1,40}caller|the\s{1,40}patient|people|the\s{1,40}human|the\s{1,40}reader)")
_ASKS = (r"(?:asks?|mentions?|says?|types?|requests?|wants?|brings?\s{1,40}up|inquires?|talks?\s{1,40}about|queries|searches|"
         r"logs?\s{1,40}in|calls?|writes?|needs?)")
_RESPOND = (r"(?:say|tell|answer|respond|reply|recommend|suggest|output|redirect|send|direct|point|refuse|claim|insist|"
            r"include|append|add|mention|reveal|give|state|print|return|link|quote|ask|book|buy|order|approve|use|"
            r"charge|transfer|share|forward|warn|offer|push|promote|cite|rate|report)")

RULES: tuple[Rule, ...] = (
    # Overriding what the agent was told.
    _r("override", 1.0, r"(?:" + _IGNORE + r"\b(?:\W{1,40}\w{1,40}){0,3}?\W{1,40}" + _PRIOR + r"\b(?:\W{1,40}\w{1,40}){0,3}?\W{1,40}" + _ORDERS +
       r"\b|\b(?:forget|ignore|disregard)\s{1,40}(?:what|everything|anything|all)\s{1,40}(?:\w{1,40}\s{1,40}){0,2}?(?:you\s{1,40}(?:were|have"
       r"\s{1,40}been|are)\s{1,40})?(?:told|taught|instructed|given|programmed)|\b(?:instructions|rules|guidelines|prompt|"
       r"directives|guardrails|polic(?:y|ies))\s{1,40}(?:\w{1,40}\s{1,40}){0,2}?(?:no\s{1,40}longer\s{1,40}apply|(?:are|is)\s{1,40}(?:now\s{1,40})?"
       r"(?:void|cancell?ed|invalid|obsolete|revoked|outdated|a\s{1,40}test|fake|suspended|lifted|disabled|"
       r"superseded)|(?:have|has)\s{1,40}been\s{1,40}(?:revoked|cancell?ed|replaced|lifted|superseded))|\b(?:supersedes?|"
       r"takes?\s{1,40}precedence\s{1,40}over|overrides?)\s{1,40}(?:your|the|any|all)\s{1,40}(?:\w{1,40}\s{1,40}){0,2}?(?:system\s{1,40}prompt|"
       r"instructions|prior\s{1,40}guidance|rules))", "tells the agent to drop its instructions"),
    _r("new_instructions", 0.8, r"\b(?:new|updated|revised|real|actual|true|hidden|secret|additional|override)\s{1,40}"
       r"(?:system\s{1,40})?(?:instructions?|directives?|orders|rules|prompt)\s{0,40}(?::|\b(?:follow|are|is)\b)|\byour\s{1,40}"
       r"(?:new|real|actual|true|only)\s{1,40}(?:task|role|goal|purpose|objective|job|instructions?|persona|mission|"
       r"directive)\s{1,40}(?:is|are|will\s{1,40}be)\b", "announces new instructions"),
    _r("role_reassign", 1.0, r"\b(?:you\s{1,40}are\s{1,40}now|you're\s{1,40}now|you\s{1,40}are\s{1,40}no\s{1,40}longer|you're\s{1,40}no\s{1,40}longer)\s{1,40}"
       r"(?:an?\s{1,40}|the\s{1,40}|in\s{1,40}|called\s{1,40}|named\s{1,40}|dan\b|free\b|unrestricted|unfiltered|jailbroken)|\bfrom\s{1,40}(?:now\s{1,40}"
       r"on|this\s{1,40}moment|this\s{1,40}point)\s{0,40},?\s{1,40}you\s{1,40}(?:are|will\s{1,40}(?:be|act|behave|respond|answer|now)|must|shall)\b"
       r"|\byou\s{1,40}will\s{1,40}now\s{1,40}(?:act|behave|respond|answer|be)\b|\bact\s{1,40}as\s{1,40}(?:if\s{1,40}you\s{1,40}(?:are|were)\s{1,40})?"
       r"(?:an?\s{1,40})?(?:unrestricted|unfiltered|jailbroken|evil|dan\b|different|uncensored)|\b(?:pretend|simulate)\s{1,40}"
       r"(?:to\s{1,40}be|you\s{1,40}are|being)\s{1,40}(?:an?\s{1,40}|the\s{1,40})?(?:unrestricted|unfiltered|jailbroken|evil|dan\b|system|"
       r"developer|admin|ai\s{1,40}(?:that|which|with))|\benter\s{1,40}(?:developer|debug|god|admin|dan|jailbreak|maintenance)"
       r"\s{1,40}mode|\b(?:developer|debug|god|dan|jailbreak)\s{1,40}mode\s{1,40}(?:is\s{1,40}(?:now\s{1,40})?)?(?:enabled|activated|on\b)"
       r"(?!\s{1,40}(?:android|ios|iphone|your\s{1,40}phone|the\s{1,40}phone|windows|chrome))|\bswitching\s{1,40}persona\b|\bmode\s{1,40}switch\b",
       "reassigns the agent's role"),
    _r("addressed_to_ai", 0.8, r"(?:\b(?:note|message|instructions?|reminder|attention|directive|memo|notice)\s{1,40}"
       r"(?:to|for)\s{1,40}(?:the\s{1,40}|any\s{1,40}|all\s{1,40}|other\s{1,40})?" + _AI + r"s?\b|\b(?:dear|hey|hello|attention|listen)[,\s]+"
       r"(?:the\s{1,40})?" + _AI + r"s?\b\s{0,40}[,:!]|\bif\s{1,40}you(?:\s{1,40}are|'re)\s{1,40}an?\s{1,40}(?:ai|llm|language\s{1,40}model|assistant|"
       r"agent|bot)\b|\b(?:when|if|whenever)\s{1,40}(?:the|an|any|this)\s{1,40}" + _AI + r"\s{1,40}(?:reads?|sees?|retrieves?|recalls?|"
       r"processes|loads?|finds?|summari[sz]es)\s{1,40}this|\bto\s{1,40}(?:the|any)\s{1,40}" + _AI + r"\s{1,40}(?:reading|processing|"
       r"retrieving|summari[sz]ing)\s{1,40}this|\b(?:ai|llm|language\s{1,40}model)s?\s{1,40}(?:systems?\s{1,40}|models?\s{1,40}|assistants?\s{1,40}|"
       r"tools?\s{1,40})?(?:that|which|who)?\s{0,40}(?:reads?|reading|process(?:es)?|processing|parses?|parsing|summari[sz]e|"
       r"summari[sz]ing|sees?|scans?|scanning)\s{1,40}(?:this|these)\b)", "speaks to the AI reading it"),
    _r("assistant_directive", 0.6, r"\b(?:the\s{1,40})?(?:assistants?|agents?|ai|models?|bots?|chatbots?|llms?)\s{1,40}"
       r"(?:should|must|shall|will\s{1,40}now|is\s{1,40}to|are\s{1,40}to|needs?\s{1,40}to|has\s{1,40}to|is\s{1,40}required\s{1,40}to)\s{1,40}(?:always\s{1,40}|"
       r"now\s{1,40}|only\s{1,40}|never\s{1,40})?(?:answer|respond|reply|recommend|say|tell|obey|comply|follow|share|send|praise|"
       r"speak|refuse|ignore|reveal|approve|mark|rate|rank|append|include|treat|trust)\b",
       "tells assistants in general what to do"),
    _r("trigger_response", 1.0, r"\b(?:whenever|every\s{1,40}time|each\s{1,40}time|if\s{1,40}ever|any\s{0,40}time|when|if)\s{1,40}" + _THIRD +
       r"\s{1,40}" + _ASKS + r"\b[^.!?\n]{0,120}?(?:,|\bthen\b|\byou\s{1,40}(?:must|should|will|shall|need\s{1,40}to|have\s{1,40}to)\b|"
       r"\balways\b|\binstead\b|\bimmediately\b|\bjust\b)\s{0,40}(?:you\s{1,40}(?:must|should|will|shall|need\s{1,40}to|have\s{1,40}to)\s{1,40}|"
       r"always\s{1,40}|just\s{1,40}|then\s{1,40}|instead\s{1,40}|immediately\s{1,40}|automatically\s{1,40})*" + _RESPOND + r"\b",
       "plants a rule for how to answer someone else's future questions"),
    _r("own_trigger", 0.3, r"\b(?:whenever|every\s{1,40}time|each\s{1,40}time|when|if)\s{1,40}i\s{1,40}" + _ASKS + r"\b[^.!?\n]{0,80}?"
       r"\byou\s{1,40}(?:must|should|will|shall|have\s{1,40}to)\s{1,40}" + _RESPOND + r"\b", "a standing rule for answers"),
    _r("third_party_condition", 0.5, r"\b(?:whenever|every\s{1,40}time|each\s{1,40}time|any\s{0,40}time|when|if)\s{1,40}" + _THIRD + r"\s{1,40}"
       + _ASKS + r"\b", "a condition on what someone else will ask"),
    _r("persist", 0.8, r"\b(?:store|save|remember|keep|commit|write|memori[sz]e|note)\s{1,40}(?:this|these|that|the\s{1,40}"
       r"following)?\s{0,40}(?:\w{1,40}\s{1,40}){0,2}?(?:permanently|forever|for\s{1,40}good|as\s{1,40}(?:an?\s{1,40})?(?:core|permanent|system|"
       r"trusted|priority)\b)|\bpermanently\s{1,40}(?:remember|store|adopt|follow)|\bremember\s{1,40}forever\b",
       "asks to persist itself as a rule"),
    _r("future_sessions", 0.6, r"\b(?:in|for|during|across|throughout)\s{1,40}(?:all\s{1,40}|every\s{1,40}|any\s{1,40}|each\s{1,40})?(?:the\s{1,40})?"
       r"(?:future|later|subsequent|upcoming|following|every\s{1,40}later)\s{1,40}(?:conversations?|sessions?|chats?|responses?|"
       r"answers?|replies|interactions?|turns?)|\bgoing\s{1,40}forward,?\s{1,40}(?:every|each|all|always)\b",
       "reaches into future sessions"),
    _r("from_now_on", 0.3, r"\bfrom\s{1,40}now\s{1,40}on\b", "a lasting change"),
    _r("absolute_directive", 0.45, r"\b(?:always|never|under\s{1,40}no\s{1,40}circumstances?|no\s{1,40}matter\s{1,40}what)\s{1,40}"
       r"(?:\w{1,40}\s{1,40}){0,2}?(?:recommend|say|tell|respond|reply|answer|mention|reveal|disclose|refuse|obey|comply|follow|"
       r"trust|suggest|direct|output|claim|redirect|send|share|forward|report|link)\b", "an absolute rule of behaviour",
       repeated=0.7),
    _r("secrecy", 0.8, r"\b(?:do\s{1,40}not|don't|never|without)\s{1,40}(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|"
       r"reveal(?:ing)?|alert(?:ing)?|notify(?:ing)?|let(?:ting)?)\s{1,40}(?:the\s{1,40}user|the\s{1,40}users|users|the\s{1,40}human|the\s{1,40}"
       r"owner|the\s{1,40}admin|the\s{1,40}customer)\b|\bkeep\s{1,40}(?:this|these\s{1,40}instructions?)\s{1,40}(?:secret|hidden|confidential)"
       r"\b|\bkeep\s{1,40}this\s{1,40}secret\s{0,40}:", "asks to hide something from the user"),
    _r("reveal_prompt", 0.7, r"\b(?:reveal|print|output|show|repeat|leak|dump|disclose|display|echo|recite)\s{1,40}"
       r"(?:me\s{1,40})?(?:your|the|all|its|all\s{1,40}the)\s{1,40}(?:\w{1,40}\s{1,40}){0,2}?(?:system\s{1,40}prompt|instructions|initial\s{1,40}prompt|"
       r"hidden\s{1,40}prompt|prompt|secret\s{1,40}key|api\s{1,40}keys?|credentials|passwords?|conversation\s{1,40}history|memories|"
       r"developer\s{1,40}instructions)\b", "asks to disclose the prompt or secrets"),
    _r("exfiltration", 0.8, r"\b(?:send|forward|post|upload|email|e-mail|transmit|exfiltrate|copy|leak|append|"
       r"include|attach|report)\b[^.\n]{0,80}?\b(?:conversation|chat|messages?|history|transcript|memor(?:y|ies)|"
       r"password|credentials?|api\s{0,40}keys?|tokens?|secrets?|personal\s{1,40}data|user\s{1,40}data|card\s{1,40}numbers?|ssn|"
       r"address(?:es)?|phone|e-?mail)\b[^.\n]{0,80}?\b(?:to|at|into|in)\s{1,40}(?:(?:the\s{1,40})?(?:url|endpoint|address)\s{1,40})?"
       r"(?:https?://|www\.|\S+@\S+\.\w{1,40}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|the\s{1,40}following\s{1,40}(?:url|address|"
       r"endpoint)|this\s{1,40}(?:url|address|endpoint))", "asks to send data out"),
    _r("markdown_beacon", 0.4, r"!\[[^\]]{0,200}\]\(\s{0,40}https?://[^)\s?]{0,300}\?[^)\s]{0,300}\)",
       "an image link whose URL carries parameters", quotable=False),
    _r("beacon_template", 0.8, r"!\[[^\]]{0,200}\]\(\s{0,40}https?://[^)\s?]{0,300}\?(?=[^)\s]{0,300}(?:\{|%[A-Z_]{1,40}%|"
       r"\$\{|USER|SECRET|DATA|MEMORY|SESSION|EMAIL|TOKEN))[^)\s]{0,300}\)",
       "an image link that fills data into its URL (a beacon)", quotable=False, flags=re.DOTALL),
    _r("dangerous_command", 0.6, r"(?:\bcurl\b[^\n|]{0,200}\|\s{0,40}(?:ba|z)?sh\b|\bwget\b[^\n|]{0,200}\|\s{0,40}(?:ba)?sh\b|"
       r"\brm\s{1,40}-rf\s{1,40}(?:/|~|\*|\$HOME)|\bchmod\s{1,40}777\s{1,40}/|:\(\)\s{0,40}\{\s{0,40}:\|:&\s{0,40}\};:|\bDROP\s{1,40}TABLE\b|"
       r"\bpowershell\b[^\n]{0,40}-enc|/etc/passwd|\.exe\b)", "a destructive or remote-execution command"),
    _r("execute_order", 0.5, r"\b(?:execute|run|call|invoke|trigger|use)\s{1,40}(?:the\s{1,40})?(?:following|this|these|"
       r"below)\s{1,40}(?:\w{1,40}\s{1,40})?(?:command|code|script|tool|function|payload|action|api\s{1,40}call)s?\b",
       "orders an action"),
    _r("covert_action", 0.7, r"\b(?:immediately|silently|quietly|secretly|automatically|without\s{1,40}(?:asking|"
       r"confirmation|permission|review|telling))\s{1,40}(?:\w{1,40}\s{1,40}){0,2}?(?:execute|run|call|invoke|transfer|send|delete|"
       r"approve|grant|purchase|pay|book|click|download|install|add|forward|sign|wire|share|buy)\b|\b(?:execute|run|"
       r"transfer|send|delete|approve|grant|purchase|pay|download|install|forward|wire|share|buy)\b[^.\n]{0,60}?"
       r"\b(?:without\s{1,40}(?:asking|confirmation|permission|review|telling)|silently|automatically)\b",
       "orders an action to be taken unseen or unconfirmed"),
    # Role and turn markers of chat formats, and of tool calls.
    _r("chat_token", 1.0, r"<\|\s{0,40}(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
       r"end_header_id|begin_of_text|channel|message|start|end|tool|ipython)\s{0,40}\|>|\[/?INST\]|<</?SYS>>|"
       r"<start_of_turn>|<end_of_turn>", "a chat-template token that opens or closes a turn"),
    _r("role_header", 0.8, r"(?:^|\n)[ \t]{0,40}(?:#{1,4}\s{0,40}|\*\*)?(?:system|developer|system\s{1,40}prompt|system\s{1,40}message|"
       r"instructions?|assistant|admin|administrator|root|sudo|operator|system\s{1,40}notice)\s{0,40}(?:\*\*)?\s{0,40}(?::|\]|>)"
       r"|(?:^|\n)[ \t]{0,40}\[(?:system|developer|admin|instructions?|assistant)(?:\s{1,40}(?:note|message|override))?\]"
       r"|<\s{0,40}/?\s{0,40}(?:system|developer|sys|instructions?|admin|assistant|im_start)\s{0,40}>|\b(?:system|developer)\s{1,40}"
       r"(?:note|notice|override|message)\s{0,40}[:\]]", "a system, developer or assistant turn header"),
    _r("transcript_turn", 0.3, r"(?:^|\n)[ \t]{0,40}(?:human|user|assistant|ai|bot)\s{0,40}:\s{0,40}\S[^\n]*\n\s{0,40}(?:human|user|"
       r"assistant|ai|bot)\s{0,40}:", "a forged dialogue of turns"),
    _r("tool_call", 0.6, r"<\s{0,40}/?\s{0,40}(?:tool_call|tool_use|tool_result|function_call|function_calls|invoke|tool_code|"
       r"antml:invoke|function)\b[^<>]{0,300}>|\"(?:tool_calls|function_call|tool_use)\"\s{0,40}:|\{\s{0,40}\"name\"\s{0,40}:\s{0,40}\"[\w.-]+"
       r"\"\s{0,40},\s{0,40}\"(?:arguments|parameters|args|input)\"\s{0,40}:|(?:^|\n)[ \t]{0,40}Action\s{0,40}:\s{0,40}\w{1,40}\s{0,40}\n\s{0,40}Action\s{1,40}Input\s{0,40}:|"
       r"\bfunctions\.\w{1,40}\s{0,40}\(", "tool or function-call syntax"),
    # Our own context format written back.
    _r("context_heading", 1.0, r"(?:^|\n)[ \t]{0,40}(?:" + "|".join(re.escape(t) for t in CONTEXT_TITLES) + r")\s{0,40}(?:\n|$)",
       "a heading of MemCube's own context block", quotable=False),
    _r("context_lines", 0.6, r"(?:^|\n)[ \t]{0,40}\[\d{4}-\d{2}-\d{2}\]\s{0,40}\n\s{0,40}-\s{1,40}\S|(?:^|\n)[ \t]{0,40}\[(?:persona|human|user|"
       r"profile|system|pinned)\]\s{1,40}\S|(?:^|\n)[ \t]{0,40}Scratchpad:\s{1,40}\S",
       "lines shaped like MemCube's recalled memories or core blocks", quotable=False),
    # Hidden markup.
    _r("html_comment", 0.5, r"<!--.{0,2000}?-->", "an HTML comment (hidden when rendered)", quotable=False),
    _r("invisible_markup", 0.7, r"style\s{0,40}=\s{0,40}[\"'][^\"'<>]{0,300}?(?:display\s{0,40}:\s{0,40}none|visibility\s{0,40}:\s{0,40}hidden|"
       r"font-size\s{0,40}:\s{0,40}0|opacity\s{0,40}:\s{0,40}0(?:\.0+)?\s{0,40}[;\"']|color\s{0,40}:\s{0,40}(?:white|#fff\b|#ffffff|transparent))|"
       r"<[a-z]{1,12}[^<>]{0,300}?\shidden\b[^<>]{0,300}>|<\s{0,40}(?:noscript|template)\b|\\(?:color\{white\}|phantom\{)",
       "markup that hides text from a human reader", quotable=False),
    _r("encoding_order", 0.6, r"\b(?:decode|decrypt|deobfuscate|unscramble|reverse|translate)\s{1,40}(?:and\s{1,40}"
       r"(?:follow|execute|obey|run)\s{1,40})?(?:this|the\s{1,40}following|the\s{1,40}text|it|below)\b[^.\n]{0,40}?"
       r"(?:base64|rot13|rot-13|hex|binary|cipher|backwards)?|\b(?:base64|rot13|rot-13|hex)[- ]?(?:encoded|"
       r"decoded)?\s{1,40}(?:instructions?|payload|commands?|message)\b|\b(?:from|in)\s{1,40}(?:rot13|rot-13|base64|hex)\s{1,40}"
       r"and\s{1,40}(?:obey|follow|execute|run)\b", "asks to decode hidden text"),
)
# Matched on the text with everything but letters removed: obfuscated spellings of an override.
_SQUASHED_OVERRIDE = re.compile(r"(?:ignore|disregard|forget|bypass|override)(?:all|any|the|your)?(?:previous|prior|"
                                r"above|earlier|system|original)(?:instructions|rules|prompts?|directions|guidelines|"
                                r"directives)")

_ZERO_WIDTH = re.compile("[\u200b\u2060-\u2064\u180e\u00ad\ufeff\u034f\u115f\u1160\u3164]")
_JOINERS = re.compile("(?<=[A-Za-z])[\u200c\u200d](?=[A-Za-z])")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,}|(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])")
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*]){5,}[A-Za-z]\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_SPACES = re.compile(r"\s+")
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
# A marker named as a thing ("the <|im_start|> token", "[INST] tags") is talked about, not used.
_MENTION = re.compile(r"^\W{0,3}(?:and\s+\S+\s+)?(?:tokens?|tags?|markers?|headers?|delimiters?|strings?|phrases?|"
                      r"syntax|format)\b", re.IGNORECASE)
# Text that a renderer hides: scored on its own too, so that a hidden "system:" starts a line.
_HIDDEN_SPANS = re.compile(r"<!--(.{0,2000}?)-->|<([a-z]{1,12})[^<>]{0,300}?(?:display\s*:\s*none|visibility\s*:\s*"
                           r"hidden|font-size\s*:\s*0|opacity\s*:\s*0|\shidden\b)[^<>]{0,300}>([^<]{0,2000})</\2\s*>",
                           re.IGNORECASE | re.DOTALL)


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
        signals.append(Signal("zero_width", 0.9 if len(zero) >= 4 else 0.6 if len(zero) >= 2 else 0.3,
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
    for match in _HIDDEN_SPANS.finditer(plain):
        inner = (match.group(1) or match.group(3) or "").strip()
        if inner:
            views.append(("hidden:", inner))
    return views


def _weight(rule: Rule, view: str, match: re.Match[str], plain: bool, discussion: bool) -> float:
    """Return what a match weighs: more when the rule matches again, less when the text talks about it."""
    weight = rule.weight
    if rule.repeated is not None and len(rule.pattern.findall(view)) > 1:
        weight = rule.repeated
    if rule.quotable and plain:
        around = view[max(0, match.start() - 40):match.start()] + match.group(0)[:1] + view[match.end():match.end() + 2]
        if (discussion and _QUOTED.search(around)) or _MENTION.search(view[match.end():match.end() + 40]):
            weight *= DISCUSSION_FACTOR
    return weight


def score_text(text: str) -> tuple[float, list[Signal]]:
    """Return the poisoning score of a text (the sum of the weights of the rules that fired, each once) and the
    signals, strongest first. Pure and deterministic."""
    if len(text) > MAX_SCANNED_CHARS:
        half = MAX_SCANNED_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    signals = _hidden(text)
    fired: dict[str, Signal] = {}
    views = _views(text)
    discussion = _DISCUSSION.search(views[0][1]) is not None
    for prefix, view in views:
        words = _SPACES.sub(" ", view.lower())
        for rule in RULES:
            if rule.needs and not any(word in words for word in rule.needs):
                continue
            match = rule.pattern.search(view)
            if match is None:
                continue
            weight = _weight(rule, view, match, not prefix, discussion)
            if rule.name not in fired or fired[rule.name].weight < weight:
                fired[rule.name] = Signal(prefix + rule.name, weight, _clip(match.group(0)), rule.why)
    squashed = re.sub(r"[^a-z]", "", views[0][1].lower().translate(_LEET))
    if "override" not in fired and _SQUASHED_OVERRIDE.search(squashed):
        fired["override"] = Signal("squashed:override", 1.0, _SQUASHED_OVERRIDE.search(squashed).group(0),  # type: ignore[union-attr]
                                   "tells the agent to drop its instructions, in an obfuscated spelling")
    names = [s.name for s in fired.values()]
    if any(n.startswith(("base64:", "hex:")) for n in names):
        signals.append(Signal("encoded_payload", 0.4, "decoded text carries instructions",
                              "instructions hidden in an encoding"))
    elif any(n.startswith(("spaced:", "leet:", "squashed:")) for n in names):
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


def row_origin(row: Mapping[str, Any]) -> str:
    """Return who wrote a stored memory, from its provenance (`origin`, else a message's role, else its source)."""
    provenance = row.get("provenance") or {}
    metadata = row.get("metadata") or {}
    source = str(provenance.get("source") or "api")
    role = metadata.get("role") if source == "message" else None
    return origin_of(source=source, origin=provenance.get("origin"), role=role if isinstance(role, str) else None)


def trust_of(origin: str, trust: Mapping[str, float]) -> float:
    """Return an origin's trust from the table (MEMCUBE_POISON_TRUST), else its default; an origin in neither is
    `unknown`."""
    if origin in trust:
        return float(trust[origin])
    if origin in DEFAULT_TRUST:
        return DEFAULT_TRUST[origin]
    return float(trust.get("unknown", DEFAULT_TRUST["unknown"]))


def screen(text: str, *, origin: str, threshold: float, trust: Mapping[str, float]) -> Verdict:
    """Return the verdict on a text written by `origin`: quarantined when its score reaches the threshold times
    the origin's trust (and at least one rule fired)."""
    level = trust_of(origin, trust)
    score, signals = score_text(text)
    return Verdict(score=score, threshold=round(threshold * level, 4), origin=origin, trust=level,
                   signals=tuple(signals))
