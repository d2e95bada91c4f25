"""A lesson: a procedural cube whose `data` holds its structured fields, its polarity, its utility counters
and its status; its `content` is the readable text rendered from those fields (what context assembly shows),
and its embedding is of `when_to_use`, so lessons are found by the situation, not by their wording.

    success      {when_to_use, steps, tools}              "When <situation>: <step> → <step> → ..."
    failure      {when_to_use, avoid, instead?, tools}    "Avoid: <what went wrong> (when <situation>); instead: ..."
    comparative  {when_to_use, difference, steps, tools}  "When <situation>: <what made the difference>"

A procedural cube written by hand (POST /v1/memories) is a lesson too: no polarity, its content is its
situation, and it starts on probation like any other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np

from memcube.consolidation.ledger import as_array
from memcube.lessons import utility
from memcube.models import LessonView

# The structured fields, in the order `data` lists them.
FIELDS = ("polarity", "when_to_use", "steps", "tools", "avoid", "instead", "difference")


def render(polarity: str | None, fields: dict[str, Any]) -> str:
    """Return a lesson's readable text from its fields."""
    when = fields.get("when_to_use") or ""
    if polarity == "failure":
        text = f"Avoid: {fields.get('avoid')} (when {when})"
        return f"{text}; instead: {fields['instead']}" if fields.get("instead") else text
    if polarity == "comparative":
        return f"When {when}: {fields.get('difference')}"
    steps = fields.get("steps") or []
    if steps:
        return f"When {when}: " + " → ".join(steps)
    return when


def payload(row: dict[str, Any]) -> dict[str, Any]:
    """Return a lesson cube's data as an object (a hand-written procedural cube may have none)."""
    data = row.get("data")
    if isinstance(data, dict):
        return data
    return {} if data is None else {"data": data}


def status_of(row: dict[str, Any]) -> str:
    """Return a lesson's status; a quarantined cube is never served, so it counts as retired."""
    if row["status"] != "active":
        return "retired"
    status = payload(row).get("status")
    return status if status in ("probationary", "trusted", "retired") else "probationary"


def view(row: dict[str, Any], *, similarity: float | None = None) -> LessonView:
    """Return the API view of a lesson cube; with the similarity of its situation to a task, its score too."""
    data = payload(row)
    uses, successes, failures = utility.counters(data)
    eta = utility.utility(successes, uses)
    polarity = data.get("polarity") if data.get("polarity") in ("success", "failure", "comparative") else None
    return LessonView(
        id=row["id"], version=row["version"], agent_id=row["agent_id"], user_id=row["user_id"], polarity=polarity,
        when_to_use=str(data.get("when_to_use") or row["content"]), steps=_strings(data.get("steps")),
        tools=_strings(data.get("tools")), avoid=data.get("avoid"), instead=data.get("instead"),
        difference=data.get("difference"), content=row["content"], uses=uses, successes=successes, failures=failures,
        utility=round(eta, 4), status=status_of(row), similarity=similarity,
        score=None if similarity is None else round(utility.score(similarity, eta), 4),
        created_at=row.get("created_at"), updated_at=row.get("updated_at"), provenance=row["provenance"])


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass
class Revision:
    """One version a distillation writes: the lesson as it stands after one candidate, and why."""

    content: str
    data: dict[str, Any]
    derived_from: list[dict[str, Any]]
    source_refs: list[Any]
    vector: np.ndarray | None
    reason: str


@dataclass
class Lesson:
    """A lesson as one distillation batch sees it: read from the store (`version` set) or made by the batch;
    `revisions` are the versions the batch will write, in order."""

    id: UUID
    version: int | None
    polarity: str | None  # None: a procedural cube written by hand
    when_to_use: str
    vector: np.ndarray | None
    steps: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    avoid: str | None = None
    instead: str | None = None
    difference: str | None = None
    # Everything else the cube's data holds (counters, status, keys of other writers), kept as it is.
    rest: dict[str, Any] = field(default_factory=dict)
    derived_from: list[dict[str, Any]] = field(default_factory=list)
    source_refs: list[Any] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)

    @property
    def new(self) -> bool:
        return self.version is None

    @property
    def status(self) -> str:
        return str(self.rest.get("status") or "probationary")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Lesson:
        data = dict(payload(row))
        provenance = row.get("provenance") or {}
        polarity = data.pop("polarity", None)
        fields = {name: data.pop(name, None) for name in FIELDS[1:]}
        return cls(id=row["id"], version=row["version"],
                   polarity=polarity if polarity in ("success", "failure", "comparative") else None,
                   when_to_use=str(fields["when_to_use"] or row["content"]), vector=as_array(row.get("embedding")),
                   steps=_strings(fields["steps"]), tools=_strings(fields["tools"]), avoid=fields["avoid"],
                   instead=fields["instead"], difference=fields["difference"], rest=data,
                   derived_from=list(provenance.get("derived_from") or []),
                   source_refs=list(provenance.get("source_refs") or []))

    @classmethod
    def start(cls, polarity: str) -> Lesson:
        """A lesson this batch makes: on probation, never used."""
        return cls(id=uuid.uuid4(), version=None, polarity=polarity, when_to_use="", vector=None,
                   rest={"uses": 0, "successes": 0, "failures": 0, "status": "probationary"})

    def cites(self, trajectory_id: UUID) -> bool:
        return any(str(ref.get("id")) == str(trajectory_id) for ref in self.derived_from if isinstance(ref, dict))

    def fields(self) -> dict[str, Any]:
        values = {"polarity": self.polarity, "when_to_use": self.when_to_use, "steps": self.steps,
                  "tools": self.tools, "avoid": self.avoid, "instead": self.instead, "difference": self.difference}
        return {name: value for name, value in values.items() if value not in (None, [])}

    def content(self) -> str:
        return render(self.polarity, self.fields())

    def data(self) -> dict[str, Any]:
        return {**self.fields(), **self.rest}

    def snapshot(self, reason: str) -> None:
        """Record the lesson as it stands now as the next version to write."""
        self.revisions.append(Revision(self.content(), self.data(), list(self.derived_from), list(self.source_refs),
                                       self.vector, reason))
