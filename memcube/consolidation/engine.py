"""The interface both engines implement, and what a batch offers them."""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np

from memcube.consolidation.ledger import Decision, Episode, Fact


class Context(Protocol):
    """What an engine may ask while it decides on one topic group."""

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Return one vector per text, as the store embeds them."""
        ...

    def neighbours(self, vector: np.ndarray | None, *, attribute: str | None = None) -> list[tuple[Fact, float]]:
        """Return the active facts closest to a vector (and every active fact with `attribute`), closest
        first with their cosine similarity: facts of the store and facts this batch has made so far."""
        ...


class Engine(Protocol):
    """Turns episodes into decisions on facts, and sessions into summaries."""

    name: str
    model: str | None
    prompt_version: str | None
    summary_prompt_version: str | None

    def decide(self, group: Sequence[Episode], context: Context) -> Iterator[Decision]:
        """Yield decisions for a topic group; each is applied before the next is asked for."""
        ...

    def summarize(self, session_id: str, episodes: Sequence[Episode], previous: dict | None,
                  facts_from: set[object]) -> tuple[str, dict]:
        """Return (content, data) of the session's summary, given its previous summary cube (or None) and the
        ids of the episodes that gave facts."""
        ...
