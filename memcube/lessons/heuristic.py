"""The heuristic engine: distillation without an LLM, deterministic, so it works offline.

- A success becomes a success lesson: the situation (the task, with its values masked), the steps as
  `tool: action`, the tools in order.
- A failure becomes the failure lesson of its situation: the failing step (the first whose observation
  reads like an error, else the last) and what it gave, to avoid; and, when a success lesson of the same
  situation shows what to do at that point, that, instead. One failure lesson per situation keeps the
  latest MAX_AVOID different mistakes.
- A failure and a success of the same situation make a comparative lesson: where the failed run left the
  way that works, and what it got.

Two tasks are of the same situation when their words match in order (at least MIN_OVERLAP of the longer
one's, values masked) or their situations' cosine similarity reaches MEMCUBE_LESSON_MERGE_SIMILARITY. A
success lesson is one procedure for one situation, so a success merges only into a lesson with the same
tools; another procedure for the same situation is a lesson of its own, and if it is wrong, its utility
retires it. Merging generalizes the situation to what the tasks share ("book a flight from Paris to Rome"
and "book a flight from Oslo to Lima" make "book a flight from … to …"), which is what lets the lesson be
found for the next variant.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Iterator, Sequence

from memcube.lessons.engine import Context
from memcube.lessons.ledger import Candidate
from memcube.lessons.lesson import Lesson
from memcube.lessons.trajectory import Trajectory

GAP = "…"
# How much two situations must share, in order (of the longer one's words), to be the same situation.
MIN_OVERLAP = 0.6
# Mistakes one failure lesson lists, the latest first kept.
MAX_AVOID = 5
AVOID_SEPARATOR = "; "
# Characters of an observation a failure lesson quotes.
QUOTE_CHARS = 160
ERROR = re.compile(r"\b(?:error|errors|failed|fails|failure|exception|denied|forbidden|not found|invalid|"
                   r"timed out|timeout|refused|cannot|can't|unable|rejected|unauthori[sz]ed|missing|conflict)\b",
                   re.IGNORECASE)
# Instance values a situation should not depend on: quoted strings, then tokens with digits, e-mail
# addresses, URLs and paths.
_QUOTED = re.compile(r"(?<!\w)\"[^\"]+\"|(?<!\w)'[^']+'(?!\w)|“[^”]+”|‘[^’]+’")
_VALUE = re.compile(r"\d|@|://|/")
_PUNCTUATION = ".,;:!?()[]{}\"'“”‘’`"
_STOP = {"a", "an", "the", "to", "of", "in", "on", "for", "with", "and", "or", "at", "by", "from", "is", "it",
         "this", "that", "my", "our", "your", "be", "as", "into"}


def mask(task: str) -> str:
    """Return a task with its instance values (numbers, ids, quoted strings, addresses, paths) as `…`."""
    text = _QUOTED.sub(GAP, task)
    words = [GAP if _VALUE.search(word) else word for word in text.split()]
    return _collapse(words)


def _collapse(words: Sequence[str]) -> str:
    out: list[str] = []
    for word in words:
        if word.strip(_PUNCTUATION) == GAP or word == GAP:
            if out and out[-1] == GAP:
                continue
            word = GAP
        out.append(word)
    return " ".join(out)


def _norm(words: Sequence[str]) -> list[str]:
    # A gap matches nothing, not even another gap.
    return [f"\0{i}" if w == GAP else w.strip(_PUNCTUATION).lower() for i, w in enumerate(words)]


def _content(words: Sequence[str]) -> int:
    return sum(1 for w in words if w != GAP and w.strip(_PUNCTUATION).lower() not in _STOP)


def generalize(a: str, b: str) -> str | None:
    """Return what two situations share, in order, with `…` for what differs; None when they share too little
    (fewer than two content words, or under half the words of the shorter one)."""
    wa, wb = a.split(), b.split()
    matcher = SequenceMatcher(None, _norm(wa), _norm(wb), autojunk=False)
    out: list[str] = []
    ia = ib = 0
    for block in matcher.get_matching_blocks():
        if block.a > ia or block.b > ib:
            out.append(GAP)
        out.extend(wa[block.a:block.a + block.size])
        ia, ib = block.a + block.size, block.b + block.size
    kept = sum(1 for w in out if w != GAP)
    if _content(out) < 2 or kept < 0.5 * min(len([w for w in wa if w != GAP]), len(wb)):
        return None
    return _collapse(out)


def overlap(situation: str, task: str) -> float:
    """Return the share of words two situations have in common, in order, of the longer one's words (gaps and
    the task's values left out)."""
    mine = [w for w in situation.split() if w != GAP]
    theirs = [w for w in mask(task).split() if w != GAP]
    if not mine or not theirs:
        return 0.0
    matcher = SequenceMatcher(None, _norm(mine), _norm(theirs), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(mine), len(theirs))


def failing_step(trajectory: Trajectory) -> int:
    """Return the index of the step that went wrong: the first whose observation reads like an error, else the
    last."""
    for index, step in enumerate(trajectory.steps):
        if step.observation and ERROR.search(step.observation):
            return index
    return len(trajectory.steps) - 1


def _quote(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS - 1] + "…"


def _steps(trajectory: Trajectory) -> list[str]:
    return [step.text() for step in trajectory.steps]


class HeuristicEngine:
    """Distillation by rules: a lesson per procedure and situation, merged as variants come in."""

    name = "heuristic"
    model: str | None = None
    prompt_version: str | None = None

    def __init__(self, *, merge_similarity: float) -> None:
        self._merge_similarity = merge_similarity

    def distill(self, group: Sequence[Trajectory], context: Context) -> Iterator[Candidate]:
        for trajectory in group:
            if trajectory.outcome == "success":
                yield from self._success(trajectory, context)
            elif trajectory.outcome == "failure":
                yield from self._failure(trajectory, context)
            # A partial outcome shows neither a way that works nor one that fails: no lesson.

    def _same_situation(self, lesson: Lesson, task: str, similarity: float) -> bool:
        return similarity >= self._merge_similarity or overlap(lesson.when_to_use, task) >= MIN_OVERLAP

    def _match(self, near: list[tuple[Lesson, float]], polarity: str, task: str, same) -> Lesson | None:  # noqa: ANN001
        for lesson, similarity in near:
            if lesson.polarity == polarity and same(lesson) and self._same_situation(lesson, task, similarity):
                return lesson
        return None

    def _situation(self, target: Lesson | None, trajectory: Trajectory, context: Context):  # noqa: ANN202
        """Return (when_to_use, its vector): generalized with the target's, or the masked task."""
        if target is not None:
            when = generalize(target.when_to_use, trajectory.task) or target.when_to_use
        else:
            when = mask(trajectory.task)
        if when == trajectory.task:
            return when, trajectory.vector
        if target is not None and when == target.when_to_use and target.vector is not None:
            return when, target.vector
        return when, context.embed([when])[0]

    def _success(self, trajectory: Trajectory, context: Context) -> Iterator[Candidate]:
        tools, steps = trajectory.tools(), _steps(trajectory)
        near = context.lessons_near(trajectory.vector, tools=tools)
        target = self._match(near, "success", trajectory.task, lambda lesson: lesson.tools == tools)
        if target is not None and len(target.steps) == len(steps):
            steps = [generalize(old, new) or old for old, new in zip(target.steps, steps)]
        when, vector = self._situation(target, trajectory, context)
        yield Candidate("success", when, [trajectory], vector, steps=steps, tools=tools, target=target,
                        reason="heuristic: the same tools in the same situation" if target else "heuristic")
        # The first success of a situation where a failure is known (one that took a tool this success did
        # not need): what made the difference.
        failure = self._match(near, "failure", trajectory.task,
                              lambda lesson: any(tool not in tools for tool in lesson.tools))
        if failure is not None and self._match(near, "comparative", trajectory.task,
                                               lambda lesson: lesson.tools[:len(tools)] == tools) is None:
            failed = context.trajectories(failure.derived_from[-1:])
            if failed and failed[0].outcome == "failure":
                yield from self._compare(tools, steps, when, vector, trajectory, failed[0], None)

    def _failure(self, trajectory: Trajectory, context: Context) -> Iterator[Candidate]:
        index = failing_step(trajectory)
        bad = trajectory.steps[index]
        before = [s.tool for s in trajectory.steps[:index] if s.tool]
        near = context.lessons_near(trajectory.vector)
        # A success of the same situation that never used the tool that failed shows the way instead; its
        # latest trajectory is then evidence too.
        success = self._match(near, "success", trajectory.task,
                              lambda lesson: bool(lesson.tools) and bad.tool not in lesson.tools)
        succeeded = context.trajectories(success.derived_from[-1:]) if success is not None else []
        if not (succeeded and succeeded[0].outcome == "success" and succeeded[0].tools() == success.tools):
            success, succeeded = None, []
        instead = None
        if success is not None:
            follows = success.tools[:len(before)] == before and len(success.tools) > len(before)
            instead = (f"{success.tools[len(before)]}, as the successful runs do: " if follows
                       else "what the successful runs do: ") + " → ".join(success.tools)
        target = self._match(near, "failure", trajectory.task, lambda lesson: True)
        when, vector = self._situation(target, trajectory, context)
        mistake = (bad.text() + (f" (it gave: {_quote(bad.observation)})" if bad.observation else "")) \
            .replace(AVOID_SEPARATOR, ", ")
        new_key = bad.tool or mistake
        keep = [(m, k) for m, k in _mistakes(target) if k != new_key] + [(mistake, new_key)]
        keep = keep[-MAX_AVOID:]
        yield Candidate("failure", when, [trajectory, *succeeded], vector,
                        tools=[k for m, k in keep if m.startswith(f"{k}: ")],
                        avoid=AVOID_SEPARATOR.join(m for m, _ in keep), instead=instead, target=target,
                        reason="heuristic: a failure in the same situation" if target else "heuristic")
        if success is not None:
            comparative = self._match(near, "comparative", trajectory.task,
                                      lambda lesson: lesson.tools[:len(success.tools)] == success.tools)
            yield from self._compare(success.tools, success.steps, success.when_to_use, success.vector,
                                     succeeded[0], trajectory, comparative)

    def _compare(self, tools: list[str], steps: list[str], when: str, vector, succeeded: Trajectory,  # noqa: ANN001
                 failed: Trajectory, target: Lesson | None) -> Iterator[Candidate]:
        index = failing_step(failed)
        bad = failed.steps[index]
        before = [s.tool for s in failed.steps[:index] if s.tool]
        what = f"{bad.tool!s}" if bad.tool else repr(bad.action)
        difference = f"the successful runs go {' → '.join(tools)}; a failed run used {what} at step {index + 1}"
        if tools[:len(before)] == before and len(tools) > len(before) and tools[len(before)] != bad.tool:
            difference += f" where they use {tools[len(before)]}"
        if bad.observation:
            difference += f", and got: {_quote(bad.observation)}"
        if target is not None:
            when = target.when_to_use
            vector = target.vector
        yield Candidate("comparative", when, [succeeded, failed], vector, steps=steps,
                        tools=tools + ([bad.tool] if bad.tool and bad.tool not in tools else []),
                        difference=difference, target=target,
                        reason="heuristic: a success and a failure of the same situation")


def _mistakes(lesson: Lesson | None) -> list[tuple[str, str]]:
    """Return the mistakes a failure lesson lists, each with its key: its tool, or (without one) its text. A
    lesson whose list cannot be read that way (an LLM wrote it) counts as one mistake."""
    if lesson is None or not lesson.avoid:
        return []
    items = lesson.avoid.split(AVOID_SEPARATOR)
    keys = [item.split(":", 1)[0] if item.split(":", 1)[0] in lesson.tools else item for item in items]
    if [k for k in keys if k in lesson.tools] != lesson.tools:
        return [(lesson.avoid, lesson.tools[0] if lesson.tools else lesson.avoid)]
    return list(zip(items, keys))
