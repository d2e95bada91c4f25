"""The LLM engine: one call per topic group extracts facts and decides on each against the known facts it is
shown; one call per session writes the summary. Answers are validated; a bad answer is retried, then the
job fails (llm.LLMFailed) and nothing of the batch is written."""

from __future__ import annotations

from typing import Annotated, Iterator, Sequence

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from memcube.consolidation.engine import Context
from memcube.consolidation.ledger import Candidate, Decision, Episode, Fact
from memcube.llm import LLM, Usage, load_prompt
from memcube.models import Action, check_text

CONSOLIDATE_PROMPT = "consolidate_v1"
SUMMARIZE_PROMPT = "summarize_v1"
# Known facts shown per group: the closest few to each episode, at most this many in all.
NEIGHBOURS_PER_EPISODE = 5
MAX_KNOWN_FACTS = 30

Statement = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_text)]


class FactAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: Statement
    evidence: list[int] = Field(min_length=1)
    action: Action
    target: str | None = None
    attribute: Annotated[str, Field(max_length=100), AfterValidator(check_text)] | None = None
    confidence: float = Field(default=0.8, ge=0.0, le=1.0)


class ConsolidationAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    facts: list[FactAnswer] = Field(max_length=200)


class SummaryAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(check_text)]


def format_episodes(episodes: Sequence[Episode]) -> str:
    lines = []
    for number, episode in enumerate(episodes, start=1):
        who = episode.speaker or episode.role or "unknown"
        session = f" (session {episode.session_id})" if episode.session_id else ""
        lines.append(f"[{number}] {episode.at:%Y-%m-%d %H:%M}{session} {who}: {episode.content}")
    return "\n".join(lines)


def format_facts(known: dict[str, Fact]) -> str:
    if not known:
        return "(none)"
    lines = []
    for label, fact in known.items():
        since = f"true since {fact.valid_from:%Y-%m-%d}, " if fact.valid_from else ""
        lines.append(f"{label}: {fact.content} ({since}confidence {fact.confidence:.2f})")
    return "\n".join(lines)


def checker(known: dict[str, Fact], n_episodes: int):  # noqa: ANN201 - a validator closure
    """Return a check that rejects answers naming unknown facts or episodes."""

    def check(answer: ConsolidationAnswer) -> None:
        for index, fact in enumerate(answer.facts):
            earlier = [f"N{n}" for n in range(1, index + 1)]
            if fact.action != "add" and fact.target not in known and fact.target not in earlier:
                raise ValueError(f"facts[{index}]: action {fact.action} needs a target among "
                                 f"{', '.join([*known, *earlier]) or 'the known facts (there are none)'}")
            bad = [n for n in fact.evidence if not 1 <= n <= n_episodes]
            if bad:
                raise ValueError(f"facts[{index}].evidence: no episode {bad[0]} (1 to {n_episodes})")

    return check


class LLMEngine:
    """Consolidation by an OpenAI-compatible LLM, with versioned prompts."""

    name = "llm"

    def __init__(self, llm: LLM, usage: Usage) -> None:
        self._llm = llm
        self._usage = usage
        self._consolidate = load_prompt(CONSOLIDATE_PROMPT)
        self._summarize = load_prompt(SUMMARIZE_PROMPT)
        self.model: str | None = llm.model
        self.prompt_version: str | None = CONSOLIDATE_PROMPT
        self.summary_prompt_version: str | None = SUMMARIZE_PROMPT

    def decide(self, group: Sequence[Episode], context: Context) -> Iterator[Decision]:
        known = self._known_facts(group, context)
        prompt = self._consolidate.render(facts=format_facts(known), episodes=format_episodes(group))
        answer = self._llm.complete_json(prompt, ConsolidationAnswer, usage=self._usage,
                                         check=checker(known, len(group)))
        vectors = context.embed([fact.content for fact in answer.facts]) if answer.facts else []
        candidates: list[Candidate] = []
        for fact, vector in zip(answer.facts, vectors):
            evidence = [group[n - 1] for n in dict.fromkeys(fact.evidence)]
            candidate = Candidate(content=fact.content, evidence=evidence, attribute=fact.attribute,
                                  confidence=fact.confidence, vector=vector)
            decision = Decision(fact.action, candidate, reason=f"llm: {fact.action}")
            if fact.action != "add" and fact.target in known:
                decision.target = known[fact.target]
            elif fact.action != "add":
                # "N2": the second fact of this answer (the check let only earlier ones through).
                decision.target_candidate = candidates[int(fact.target[1:]) - 1]  # type: ignore[index]
            candidates.append(candidate)
            yield decision

    def _known_facts(self, group: Sequence[Episode], context: Context) -> dict[str, Fact]:
        best: dict[object, tuple[Fact, float]] = {}
        for episode in group:
            for fact, similarity in context.neighbours(episode.vector)[:NEIGHBOURS_PER_EPISODE]:
                if fact.id not in best or best[fact.id][1] < similarity:
                    best[fact.id] = (fact, similarity)
        ranked = sorted(best.values(), key=lambda item: -item[1])[:MAX_KNOWN_FACTS]
        return {f"F{number}": fact for number, (fact, _) in enumerate(ranked, start=1)}

    def summarize(self, session_id: str, episodes: Sequence[Episode], previous: dict | None,
                  facts_from: set[object]) -> tuple[str, dict]:
        before = f"The session's summary so far (extend it):\n{previous['content']}" if previous else ""
        prompt = self._summarize.render(previous=before, episodes=format_episodes(episodes))
        answer = self._llm.complete_json(prompt, SummaryAnswer, usage=self._usage)
        total = int(((previous or {}).get("data") or {}).get("episodes") or 0) + len(episodes)
        return answer.summary, {"episodes": total}
