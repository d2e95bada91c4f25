"""Trajectories and a batch context in memory, for the tests of the engines and the ledger (no server)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from memcube.consolidation.ledger import cosine
from memcube.lessons.evidence import check_evidence
from memcube.lessons.ledger import Ledger
from memcube.lessons.lesson import Lesson
from memcube.lessons.trajectory import Step, Trajectory

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


def trajectory(task: str, steps: Sequence[tuple[str, str | None, str | None]], outcome: str = "success",
               vector: Any = None, feedback: str | None = None) -> Trajectory:
    """A trajectory of (tool, action, observation) steps."""
    return Trajectory(id=uuid.uuid4(), version=1, task=task,
                      steps=[Step(action=action, tool=tool, observation=seen) for tool, action, seen in steps],
                      outcome=outcome, score=None, feedback=feedback, at=T0, vector=vector, active=True)


class Batch:
    """The Context an engine asks (engine.py), over one ledger, with the real embedder: what a distillation
    batch offers, without the store."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.ledger = Ledger()
        self.seen: dict[str, Trajectory] = {}

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(v, dtype=np.float32) for v in self.embedder.embed(list(texts))]

    def lessons_near(self, vector: Any, *, tools: list[str] | None = None) -> list[tuple[Lesson, float]]:
        near = [(lesson, cosine(vector, lesson.vector)) for lesson in self.ledger.lessons.values()
                if lesson.status != "retired"]
        return sorted(near, key=lambda item: -item[1])

    def earlier(self, group: Sequence[Trajectory], k: int) -> list[Trajectory]:
        return []

    def trajectories(self, refs: Sequence[dict]) -> list[Trajectory]:
        return [self.seen[str(ref["id"])] for ref in refs if str(ref["id"]) in self.seen]

    def task(self, task: str, steps: Sequence[tuple[str, str | None, str | None]], outcome: str = "success",
             **fields: Any) -> Trajectory:
        t = trajectory(task, steps, outcome, vector=self.embed([task])[0], **fields)
        self.seen[str(t.id)] = t
        return t

    def run(self, engine: Any, *group: Trajectory) -> list[Any]:
        """Distil a group as a batch does: check each candidate, apply it; return the candidates."""
        made = []
        for candidate in engine.distill(group, self):
            problem = check_evidence(candidate)
            if problem:
                self.ledger.reject(candidate, problem)
            else:
                self.ledger.apply(candidate)
            made.append(candidate)
        return made

    def lessons(self, polarity: str | None = None) -> list[Lesson]:
        return [lesson for lesson in self.ledger.lessons.values() if polarity in (None, lesson.polarity)]
