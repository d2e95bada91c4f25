"""What one consolidation batch works on, in memory: its episodes, the facts it reads and makes, and the
decisions that change them. Pure: nothing here touches the database (run.py writes the result).

The four decisions on a candidate fact:
- add: a new semantic cube;
- update: the target gets the candidate's content as a new version;
- supersede: a new fact, and the target stops being true (status superseded, valid_to set, superseded_by
  the new fact); a candidate older than its target is recorded as the superseded one instead. A validity
  is never empty: statements made at one instant (the messages of one append share their time) follow each
  other in the order they were said, a microsecond apart, so `as_of` that instant finds the first;
- unchanged: a restatement; the target's confidence rises and the episode joins its evidence.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence
from uuid import UUID

import numpy as np

from memcube.models import Action
from memcube.poisoning import row_origin

# How far a restatement moves confidence toward 1: 0.6 → 0.8 → 0.9.
CONFIDENCE_GAIN = 0.5
# The least a validity lasts: a fact superseded by a statement of the same instant ends this much later than it
# started (PostgreSQL keeps microseconds).
INSTANT = timedelta(microseconds=1)


def as_array(vector: Any) -> np.ndarray | None:
    """Return a float32 array from a pgvector value, a list or an array (None stays None)."""
    if vector is None:
        return None
    if hasattr(vector, "to_numpy"):
        vector = vector.to_numpy()
    return np.asarray(vector, dtype=np.float32)


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Return the cosine similarity of two vectors (0 when either is missing or zero)."""
    if a is None or b is None:
        return 0.0
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


@dataclass
class Episode:
    """An episodic cube as consolidation reads it."""

    id: UUID
    version: int
    session_id: str | None
    content: str
    speaker: str | None
    role: str | None
    at: datetime
    vector: np.ndarray | None
    active: bool
    turn: int | None = None
    # Who wrote it (memcube/poisoning.py): its trust weighs it against what it contradicts (trust.py).
    origin: str = "unknown"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Episode:
        metadata = row.get("metadata") or {}
        data = row.get("data") if isinstance(row.get("data"), dict) else {}
        speaker = metadata.get("speaker") or metadata.get("name") or data.get("speaker") or data.get("name")
        role = metadata.get("role") or data.get("role")
        return cls(id=row["id"], version=row["version"], session_id=row["session_id"], content=row["content"],
                   speaker=str(speaker) if speaker else None, role=str(role).lower() if role else None,
                   at=row["occurred_at"] or row["created_at"], vector=as_array(row.get("embedding")),
                   active=row["status"] == "active" and bool(row["content"].strip()),
                   turn=metadata.get("turn") if isinstance(metadata.get("turn"), int) else None,
                   origin=row_origin(row))

    def ref(self) -> dict[str, Any]:
        return {"id": str(self.id), "version": self.version}

    def source_ref(self) -> dict[str, Any]:
        return {"type": "episode", "id": str(self.id), "session_id": self.session_id, "at": self.at.isoformat()}


@dataclass
class Candidate:
    """A fact an engine found in some episodes."""

    content: str
    evidence: list[Episode]
    attribute: str | None = None
    value: str | None = None
    polarity: str | None = None
    confidence: float = 0.6
    vector: np.ndarray | None = None

    @property
    def since(self) -> datetime:
        """When the candidate became true, as far as its episodes tell: the earliest of them."""
        return min(e.at for e in self.evidence)


@dataclass
class Fact:
    """A semantic cube as this batch sees it: read from the store (`version` set) or made by it."""

    id: UUID
    version: int | None
    content: str
    vector: np.ndarray | None
    attribute: str | None = None
    value: str | None = None
    polarity: str | None = None
    confidence: float = 0.6
    importance: float = 0.6
    derived_from: list[dict[str, Any]] = field(default_factory=list)
    source_refs: list[Any] = field(default_factory=list)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    status: str = "active"
    superseded_by: UUID | None = None
    tags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)

    @property
    def new(self) -> bool:
        return self.version is None

    @property
    def said_at(self) -> datetime | None:
        """When the fact was first said: its earliest episode's time, else the start of its validity (which a
        statement of the same instant may have moved a little later)."""
        times = []
        for ref in self.source_refs:
            if isinstance(ref, dict) and isinstance(ref.get("at"), str):
                try:
                    times.append(datetime.fromisoformat(ref["at"]))
                except ValueError:
                    continue
        return min(times, default=self.valid_from)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Fact:
        data = row.get("data") if isinstance(row.get("data"), dict) else {}
        provenance = row.get("provenance") or {}
        return cls(id=row["id"], version=row["version"], content=row["content"],
                   vector=as_array(row.get("embedding")), attribute=data.get("attribute"),
                   value=data.get("value"), polarity=data.get("polarity"), confidence=float(row["confidence"]),
                   importance=float(row["importance"]), derived_from=list(provenance.get("derived_from") or []),
                   source_refs=list(provenance.get("source_refs") or []),
                   valid_from=row["valid_from"] or row["occurred_at"] or row["created_at"],
                   valid_to=row["valid_to"], status=row["status"], superseded_by=row["superseded_by"],
                   tags=list(row.get("tags") or []))

    def data(self) -> dict[str, Any] | None:
        """Return the structured payload a fact with an attribute carries."""
        if not self.attribute:
            return None
        payload = {"attribute": self.attribute, "value": self.value, "polarity": self.polarity}
        return {k: v for k, v in payload.items() if v is not None}

    def add_evidence(self, episodes: Sequence[Episode]) -> list[Episode]:
        """Add episodes to the lineage; return those that were not in it yet."""
        known = {str(ref["id"]) for ref in self.derived_from if isinstance(ref, dict) and "id" in ref}
        added = []
        for episode in episodes:
            if str(episode.id) not in known:
                self.derived_from.append(episode.ref())
                self.source_refs.append(episode.source_ref())
                known.add(str(episode.id))
                added.append(episode)
        if added:
            self.changed.add("evidence")
        return added


@dataclass
class Decision:
    """What a candidate does: to a fact (`target`), or to the fact an earlier candidate of the same batch
    became (`target_candidate`), which an engine cannot name otherwise."""

    action: Action
    candidate: Candidate
    target: Fact | None = None
    reason: str | None = None
    target_candidate: Candidate | None = None


@dataclass
class Link:
    source_id: UUID
    target_id: UUID
    type: str


class Ledger:
    """The facts of one batch and what its decisions did to them, with the counts and links to write."""

    def __init__(self) -> None:
        self.facts: dict[UUID, Fact] = {}
        self.counts: Counter[str] = Counter()
        self.links: list[Link] = []
        self._made: dict[int, Fact] = {}

    def known(self, row: dict[str, Any]) -> Fact:
        """Return the batch's Fact for a stored cube, reading it from the row the first time."""
        fact = self.facts.get(row["id"])
        if fact is None:
            fact = self.facts[row["id"]] = Fact.from_row(row)
        return fact

    def new_facts(self) -> list[Fact]:
        return [f for f in self.facts.values() if f.new]

    def apply(self, decision: Decision) -> Fact:
        """Apply a decision; return the fact that now holds the candidate."""
        fact = self._apply(decision)
        self._made[id(decision.candidate)] = fact
        return fact

    def target_of(self, decision: Decision) -> Fact | None:
        """Return the fact a decision acts on: its target, or the fact its target candidate became."""
        if decision.target is not None or decision.target_candidate is None:
            return decision.target
        return self._made.get(id(decision.target_candidate))

    def quarantine(self, decision: Decision, reason: str) -> Fact:
        """Keep a candidate that would have superseded its target as a quarantined fact, linked to the target as
        contradicting it; the target does not change. Return the new fact."""
        target = self.target_of(decision)
        self.counts["quarantined"] += 1
        fact = self._add(decision.candidate, reason)
        fact.status = "quarantined"
        if target is not None:
            self.links.append(Link(fact.id, target.id, "contradicts"))
        self._made[id(decision.candidate)] = fact
        return fact

    def _apply(self, decision: Decision) -> Fact:
        candidate, target = decision.candidate, decision.target
        if target is None and decision.target_candidate is not None:
            target = self._made.get(id(decision.target_candidate))
        if decision.action == "add" or target is None:
            self.counts["added"] += 1
            return self._add(candidate, decision.reason or "extracted")
        if decision.action == "unchanged":
            self.counts["unchanged"] += 1
            if self._evidence(target, candidate.evidence):
                target.confidence = round(target.confidence + (1.0 - target.confidence) * CONFIDENCE_GAIN, 4)
                target.changed.add("confidence")
                target.reasons.append(decision.reason or "restated")
            return target
        if decision.action == "update":
            self.counts["updated"] += 1
            if candidate.content.strip() != target.content.strip():
                target.content = candidate.content
                target.vector = candidate.vector
                target.changed.add("content")
            if candidate.attribute:
                target.attribute, target.value, target.polarity = (candidate.attribute, candidate.value,
                                                                   candidate.polarity)
                target.changed.add("data")
            target.confidence = max(target.confidence, candidate.confidence)
            self._evidence(target, candidate.evidence)
            target.reasons.append(decision.reason or "refined")
            return target
        return self._supersede(candidate, target, decision.reason)

    def _add(self, candidate: Candidate, reason: str) -> Fact:
        fact = Fact(id=uuid.uuid4(), version=None, content=candidate.content, vector=candidate.vector,
                    attribute=candidate.attribute, value=candidate.value, polarity=candidate.polarity,
                    confidence=candidate.confidence, valid_from=candidate.since, reasons=[reason])
        self._evidence(fact, candidate.evidence)
        self.facts[fact.id] = fact
        return fact

    def _evidence(self, fact: Fact, episodes: Sequence[Episode]) -> list[Episode]:
        """Add episodes to a fact's lineage, with a derived_from link for each new one; return those."""
        added = fact.add_evidence(episodes)
        self.links.extend(Link(fact.id, episode.id, "derived_from") for episode in added)
        return added

    def _supersede(self, candidate: Candidate, target: Fact, reason: str | None) -> Fact:
        self.counts["added"] += 1
        self.counts["superseded"] += 1
        fact = self._add(candidate, reason or "contradicts an earlier fact")
        older, newer = target, fact
        said_at = target.said_at
        if said_at is not None and candidate.since < said_at:
            # The episode is older news than the fact it contradicts: it is the one that stopped being true.
            older, newer = fact, target
        if older.valid_from is not None and newer.valid_from is not None and newer.valid_from <= older.valid_from:
            # Said at the same instant (one append, one timestamp): the later statement starts just after.
            newer.valid_from = older.valid_from + INSTANT
            newer.changed.add("valid_from")
        older.status = "superseded"
        older.valid_to = newer.valid_from
        older.superseded_by = newer.id
        older.changed.update({"status", "valid_to", "superseded_by"})
        older.reasons.append(f"superseded by {newer.id}")
        self.links.append(Link(newer.id, older.id, "contradicts"))
        return fact

    def relate(self, fact: Fact, neighbours: Sequence[tuple[Fact, float]], threshold: float) -> None:
        """Link a new fact to close facts it did not act on."""
        for other, similarity in neighbours:
            if other.id != fact.id and other.id != fact.superseded_by and similarity >= threshold \
                    and other.superseded_by != fact.id:
                self.links.append(Link(fact.id, other.id, "related"))


def group_by_topic(vectors: Sequence[np.ndarray | None], *, threshold: float, max_size: int) -> list[list[int]]:
    """Group items (by position) whose vectors are close: each joins the open group whose centroid it is most
    similar to, if at least `threshold`, else starts a new group. Groups keep item order; deterministic."""
    groups: list[list[int]] = []
    sums: list[np.ndarray | None] = []
    for index, vector in enumerate(vectors):
        best, best_similarity = -1, threshold
        for g, total in enumerate(sums):
            if len(groups[g]) >= max_size or total is None or vector is None:
                continue
            similarity = cosine(vector, total)
            if similarity >= best_similarity:
                best, best_similarity = g, similarity
        if best < 0:
            groups.append([index])
            sums.append(None if vector is None else vector.astype(np.float64))
        else:
            groups[best].append(index)
            sums[best] = sums[best] + vector  # type: ignore[operator]
    return groups
