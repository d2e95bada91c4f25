"""What one distillation batch works on, in memory: the lessons it reads and makes, and the candidates that
change them. Pure: nothing here touches the database (distill.py writes the result).

A candidate either becomes a new lesson, or merges into the lesson its engine matched it with (`target`):
the lesson takes the candidate's wording, keeps its counters and status, and adds the candidate's
trajectories to its evidence. Every candidate applied is one version, with its reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np

from memcube.lessons.lesson import Lesson
from memcube.lessons.trajectory import Trajectory

COUNT_KEYS = ("trajectories", "added", "merged", "rejected")


@dataclass
class Candidate:
    """A lesson an engine found in some trajectories (its evidence), and the lesson it merges into, if any."""

    polarity: str
    when_to_use: str
    evidence: list[Trajectory]
    vector: np.ndarray | None = None
    steps: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    avoid: str | None = None
    instead: str | None = None
    difference: str | None = None
    target: Lesson | None = None
    reason: str = ""


@dataclass(frozen=True)
class Rejection:
    candidate: Candidate
    problem: str


class Ledger:
    """The lessons of one batch and what its candidates did to them, with the counts and links to write."""

    def __init__(self) -> None:
        self.lessons: dict[UUID, Lesson] = {}
        self.counts: Counter[str] = Counter()
        self.links: list[tuple[UUID, UUID]] = []  # (lesson, trajectory it derives from)
        self.rejected: list[Rejection] = []

    def known(self, row: dict[str, Any]) -> Lesson:
        """Return the batch's Lesson for a stored cube, reading it from the row the first time."""
        lesson = self.lessons.get(row["id"])
        if lesson is None:
            lesson = self.lessons[row["id"]] = Lesson.from_row(row)
        return lesson

    def new_lessons(self) -> list[Lesson]:
        return [lesson for lesson in self.lessons.values() if lesson.new]

    def changed(self) -> list[Lesson]:
        """Lessons with versions to write: new ones first (in the order they were made), then stored ones."""
        return sorted((lesson for lesson in self.lessons.values() if lesson.revisions), key=lambda l: not l.new)

    def reject(self, candidate: Candidate, problem: str) -> None:
        self.counts["rejected"] += 1
        self.rejected.append(Rejection(candidate, problem))

    def apply(self, candidate: Candidate) -> Lesson:
        """Apply a candidate; return the lesson that now holds it. A candidate that adds no trajectory to the
        lesson it merges into changes nothing."""
        target = candidate.target
        if target is not None:
            self.lessons.setdefault(target.id, target)
            fresh = [t for t in candidate.evidence if not target.cites(t.id)]
            if not fresh:
                return target
            lesson, verb = target, "merged into"
            self.counts["merged"] += 1
        else:
            fresh = list(candidate.evidence)
            lesson, verb = Lesson.start(candidate.polarity), "new"
            self.lessons[lesson.id] = lesson
            self.counts["added"] += 1
        lesson.polarity = candidate.polarity
        lesson.when_to_use = candidate.when_to_use
        lesson.vector = candidate.vector if candidate.vector is not None else lesson.vector
        lesson.steps = candidate.steps or lesson.steps
        lesson.tools = candidate.tools or lesson.tools
        lesson.avoid = candidate.avoid or lesson.avoid
        lesson.instead = candidate.instead or lesson.instead
        lesson.difference = candidate.difference or lesson.difference
        for trajectory in fresh:
            lesson.derived_from.append(trajectory.ref())
            lesson.source_refs.append(trajectory.source_ref())
            self.links.append((lesson.id, trajectory.id))
        cited = ", ".join(f"{t.outcome} trajectory {t.id}" for t in fresh)
        lesson.snapshot(f"{verb} {candidate.polarity} lesson from {cited}"
                        + (f" ({candidate.reason})" if candidate.reason else ""))
        return lesson
