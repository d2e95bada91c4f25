"""The evidence check every candidate passes before it is written: a tool it lists, and any tool-like name
its text uses (`search_flights`, `fs.read`, `getWeather`), must occur in the trajectories it cites (or, for a
candidate that merges into a lesson, in what that lesson says already: it passed this check when written).
A lesson that names a tool no trajectory used (an LLM's invention) is rejected, not written. Pure."""

from __future__ import annotations

import re
from typing import Iterable

from memcube.lessons.ledger import Candidate
from memcube.lessons.trajectory import Trajectory

# Names that read like identifiers: snake_case, dotted (at least two letters before the first dot, so that
# "e.g." is not one), or camelCase.
TOOL_LIKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")
_TOKEN = re.compile(r"[A-Za-z0-9_.]+")


def vocabulary(trajectories: Iterable[Trajectory]) -> set[str]:
    """Return every token (lower-cased, dotted names kept whole) of the trajectories' tasks, steps and feedback."""
    words: set[str] = set()
    for trajectory in trajectories:
        texts = [trajectory.task, trajectory.feedback or ""]
        for step in trajectory.steps:
            texts += [step.action, step.tool or "", step.thought or "", step.observation or ""]
        for text in texts:
            words.update(token.strip(".").lower() for token in _TOKEN.findall(text))
    return words


def check_evidence(candidate: Candidate) -> str | None:
    """Return what is wrong with a candidate's evidence, or None when everything it names occurs in it."""
    if not candidate.evidence:
        return "it cites no trajectory"
    cited = ", ".join(str(t.id) for t in candidate.evidence)
    tools = {tool.lower() for t in candidate.evidence for tool in t.tools()}
    words = vocabulary(candidate.evidence)
    if candidate.target is not None:
        tools.update(tool.lower() for tool in candidate.target.tools)
        words.update(token.strip(".").lower() for token in _TOKEN.findall(candidate.target.content()))
    for tool in candidate.tools:
        if tool.lower() not in tools:
            return f"tool {tool!r} occurs in none of the trajectories it cites ({cited})"
    for text in (*candidate.steps, candidate.avoid, candidate.instead, candidate.difference):
        for name in TOOL_LIKE.findall(text or ""):
            if name.lower() not in words:
                return f"{name!r} occurs in none of the trajectories it cites ({cited})"
    return None
