"""The interface both distillation engines implement, and what a batch offers them."""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np

from memcube.lessons.ledger import Candidate
from memcube.lessons.lesson import Lesson
from memcube.lessons.trajectory import Trajectory


class Context(Protocol):
    """What an engine may ask while it distils one group of trajectories."""

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Return one vector per text, as the store embeds them."""
        ...

    def lessons_near(self, vector: np.ndarray | None, *, tools: list[str] | None = None) -> list[tuple[Lesson, float]]:
        """Return the scope's distilled lessons that are served (not retired) whose situation is closest to a
        vector (and, with `tools`, every one with exactly these tools), closest first with their cosine
        similarity: lessons of the store and lessons this batch made so far."""
        ...

    def earlier(self, group: Sequence[Trajectory], k: int) -> list[Trajectory]:
        """Return up to `k` trajectories of the scope distilled before, whose tasks are closest to the group's."""
        ...

    def trajectories(self, refs: Sequence[dict]) -> list[Trajectory]:
        """Return the trajectories that lineage refs ({id, version}) name and that still exist, in order."""
        ...


class Engine(Protocol):
    """Turns trajectories into candidate lessons."""

    name: str
    model: str | None
    prompt_version: str | None

    def distill(self, group: Sequence[Trajectory], context: Context) -> Iterator[Candidate]:
        """Yield candidates for a group of trajectories with similar tasks; each is checked and applied before
        the next is asked for, so a later candidate can merge into a lesson an earlier one made."""
        ...
