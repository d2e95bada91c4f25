"""The LLM engine: one call per group of trajectories with similar tasks. The prompt shows the group, a few
earlier trajectories of similar tasks (so a success and a failure can be compared across batches) and the
lessons the agent has for those situations (L1, L2, ...); the answer lists lessons, each citing its
trajectories, and may merge one into a lesson shown. Answers are validated (a malformed one is asked again,
then the job fails and nothing of the batch is written); each lesson is then checked against its evidence
like any candidate (evidence.py), and one that names a tool its trajectories never used is rejected."""

from __future__ import annotations

from typing import Annotated, Callable, Iterator, Sequence

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from memcube.lessons.engine import Context
from memcube.lessons.ledger import Candidate
from memcube.lessons.lesson import Lesson
from memcube.lessons.trajectory import Trajectory, describe
from memcube.lessons.utility import counters, utility
from memcube.llm import LLM, Usage, load_prompt
from memcube.models import Polarity, check_text

DISTILL_PROMPT = "distill_v1"
# Earlier trajectories shown for comparison, and lessons shown: the closest few to each trajectory.
EARLIER = 4
LESSONS_PER_TRAJECTORY = 3
MAX_LESSONS = 12
# Characters of an observation the prompt shows.
OBSERVATION_CHARS = 300
# What each polarity must cite.
NEEDS = {"success": ("success",), "failure": ("failure",), "comparative": ("success", "failure")}

Statement = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_text)]


class LessonAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    polarity: Polarity
    when_to_use: Statement
    steps: list[Statement] = Field(default_factory=list, max_length=50)
    tools: list[Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)]] = \
        Field(default_factory=list, max_length=50)
    avoid: Statement | None = None
    instead: Statement | None = None
    difference: Statement | None = None
    evidence: list[int] = Field(min_length=1, max_length=100)
    merge_into: str | None = None


class DistillAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lessons: list[LessonAnswer] = Field(max_length=50)


def format_trajectories(shown: Sequence[Trajectory], earlier_from: int) -> str:
    blocks = []
    for number, trajectory in enumerate(shown, start=1):
        earlier = " (earlier)" if number > earlier_from else ""
        score = f", score {trajectory.score:g}" if isinstance(trajectory.score, (int, float)) else ""
        lines = [f"[{number}]{earlier} Task: {trajectory.task} (outcome: {trajectory.outcome}{score})"]
        lines += [f"    {index}. {describe(step, observation_chars=OBSERVATION_CHARS)}"
                  for index, step in enumerate(trajectory.steps, start=1)]
        if trajectory.feedback:
            lines.append(f"    Feedback: {trajectory.feedback}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def format_lessons(known: dict[str, Lesson]) -> str:
    if not known:
        return "(none)"
    lines = []
    for label, lesson in known.items():
        uses, successes, _ = counters(lesson.rest)
        lines.append(f"{label} ({lesson.polarity}, used {uses} times, utility {utility(successes, uses):.2f}): "
                     f"{lesson.content()}")
    return "\n".join(lines)


def checker(shown: Sequence[Trajectory], known: dict[str, Lesson]) -> Callable[[DistillAnswer], None]:
    """Return a check that rejects answers citing trajectories that were not shown, citing the wrong outcomes,
    missing a polarity's fields, or merging into a lesson that was not shown or has another polarity."""

    def check(answer: DistillAnswer) -> None:
        for index, lesson in enumerate(answer.lessons):
            where = f"lessons[{index}]"
            bad = [n for n in lesson.evidence if not 1 <= n <= len(shown)]
            if bad:
                raise ValueError(f"{where}.evidence: no trajectory {bad[0]} (1 to {len(shown)})")
            outcomes = {shown[n - 1].outcome for n in lesson.evidence}
            missing = [outcome for outcome in NEEDS[lesson.polarity] if outcome not in outcomes]
            if missing:
                raise ValueError(f"{where}: a {lesson.polarity} lesson must cite a {missing[0]} trajectory")
            required = {"success": lesson.steps, "failure": lesson.avoid,
                        "comparative": lesson.difference}[lesson.polarity]
            if not required:
                field = {"success": "steps", "failure": "avoid", "comparative": "difference"}[lesson.polarity]
                raise ValueError(f"{where}: a {lesson.polarity} lesson needs `{field}`")
            if lesson.merge_into is not None:
                target = known.get(lesson.merge_into)
                if target is None or target.polarity != lesson.polarity:
                    same = [label for label, k in known.items() if k.polarity == lesson.polarity]
                    raise ValueError(f"{where}.merge_into: {lesson.merge_into!r} is not a {lesson.polarity} lesson "
                                     f"shown ({', '.join(same) or 'there is none'}); use null for a new lesson")

    return check


class LLMEngine:
    """Distillation by an OpenAI-compatible LLM, with a versioned prompt."""

    name = "llm"

    def __init__(self, llm: LLM, usage: Usage, *, merge_similarity: float) -> None:
        self._llm = llm
        self._usage = usage
        self._merge_similarity = merge_similarity
        self._prompt = load_prompt(DISTILL_PROMPT)
        self.model: str | None = llm.model
        self.prompt_version: str | None = DISTILL_PROMPT

    def distill(self, group: Sequence[Trajectory], context: Context) -> Iterator[Candidate]:
        shown = list(group) + context.earlier(group, EARLIER)
        known = self._known(group, context)
        prompt = self._prompt.render(lessons=format_lessons(known),
                                     trajectories=format_trajectories(shown, earlier_from=len(group)))
        answer = self._llm.complete_json(prompt, DistillAnswer, usage=self._usage, check=checker(shown, known))
        vectors = context.embed([lesson.when_to_use for lesson in answer.lessons]) if answer.lessons else []
        for lesson, vector in zip(answer.lessons, vectors):
            if lesson.merge_into is not None:
                target, reason = known[lesson.merge_into], f"llm: merged into {lesson.merge_into}"
            else:
                target, reason = self._nearest(context, vector, lesson.polarity)
            yield Candidate(lesson.polarity, lesson.when_to_use, [shown[n - 1] for n in dict.fromkeys(lesson.evidence)],
                            vector, steps=list(lesson.steps), tools=list(lesson.tools), avoid=lesson.avoid,
                            instead=lesson.instead, difference=lesson.difference, target=target, reason=reason)

    def _known(self, group: Sequence[Trajectory], context: Context) -> dict[str, Lesson]:
        best: dict[object, tuple[Lesson, float]] = {}
        for trajectory in group:
            for lesson, similarity in context.lessons_near(trajectory.vector)[:LESSONS_PER_TRAJECTORY]:
                if lesson.id not in best or best[lesson.id][1] < similarity:
                    best[lesson.id] = (lesson, similarity)
        ranked = sorted(best.values(), key=lambda item: -item[1])[:MAX_LESSONS]
        return {f"L{number}": lesson for number, (lesson, _) in enumerate(ranked, start=1)}

    def _nearest(self, context: Context, vector, polarity: str) -> tuple[Lesson | None, str]:  # noqa: ANN001
        """A lesson the answer did not name still merges when its situation is as close as
        MEMCUBE_LESSON_MERGE_SIMILARITY (it may have been made by another group of this batch)."""
        for lesson, similarity in context.lessons_near(vector):
            if lesson.polarity == polarity and similarity >= self._merge_similarity:
                return lesson, f"llm: a situation {similarity:.2f} similar"
        return None, "llm"
