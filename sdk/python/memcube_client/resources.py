"""The routes of the API, grouped as the README groups them. Each method builds its request once; `MemCube`
sends it and returns the answer, `AsyncMemCube` returns a coroutine of the same answer."""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any, Sequence
from uuid import UUID

from pydantic import BaseModel

from memcube_client._endpoint import M, Resource, body, endpoint, pages, parse_model
from memcube_client._transport import Call
from memcube_client.models import (AgentSummary, ApiKey, ApiKeyCreated, AuditEntry, Appended, Artifact, Context,
                                   CoreBlockWritten, CoreMemory, Fused, Hit, ImportResult, Job, JobAccepted, Kind,
                                   LessonView, Link, MemCube, MemoryInput, MessageInput, Outcome, Page, Scratchpad,
                                   SearchResult, SessionSummary, Status, StepInput, Tier, TrajectoryRecorded,
                                   TrajectoryView, Version, WorkingMemory)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


# "Leave this field as it is" in an update, where None means "clear it".
UNSET: Any = _Unset()


def _dump(value: Any) -> Any:
    """JSON-ready form of a model, a datetime or a list of them."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _json(**fields: Any) -> dict[str, Any]:
    return {key: _dump(value) for key, value in body(**fields).items()}


def _flag(value: bool) -> str | None:
    """A boolean query parameter: sent only when true."""
    return "true" if value else None


def _if_match(version: int | None) -> dict[str, str]:
    return {"If-Match": str(version)} if version is not None else {}


def _items(model: Any) -> Any:
    """Parser of an `{"items": [...]}` answer into the list of items."""
    parse = parse_model(Page[model])
    return lambda response: parse(response).items


class Memories(Resource[M]):
    """Create, read, change, forget, fuse and link memories (`/v1/memories`)."""

    @endpoint("POST", "/v1/memories")
    def create(self, agent_id: str, content: str, *, user_id: str | None = None, session_id: str | None = None,
               kind: Kind | None = None, tier: Tier | None = None, data: Any = None, tags: Sequence[str] | None = None,
               metadata: dict[str, Any] | None = None, artifact: Artifact | dict[str, str] | None = None,
               occurred_at: datetime | None = None, valid_from: datetime | None = None,
               valid_to: datetime | None = None, importance: float | None = None, confidence: float | None = None,
               embedding: Sequence[float] | None = None, origin: str | None = None) -> Call[MemCube]:
        """Create one memory (`origin`: who wrote it; content that reads as instructions to the agent is stored
        with status `quarantined`)."""
        return Call("POST", "/v1/memories", parse_model(MemCube), json=_json(
            agent_id=agent_id, content=content, user_id=user_id, session_id=session_id, kind=kind, tier=tier,
            data=data, tags=tags, metadata=metadata, artifact=artifact, occurred_at=occurred_at,
            valid_from=valid_from, valid_to=valid_to, importance=importance, confidence=confidence,
            embedding=list(embedding) if embedding is not None else None, origin=origin))

    @endpoint("POST", "/v1/memories/batch")
    def create_batch(self, items: Sequence[MemoryInput | dict[str, Any]]) -> Call[list[MemCube]]:
        """Create up to 500 memories, all or nothing; returns them in order."""
        payload = [_dump(MemoryInput.model_validate(item)) for item in items]
        return Call("POST", "/v1/memories/batch", _items(MemCube), json={"items": payload})

    @endpoint("GET", "/v1/memories")
    def list(self, *, agent_id: str | None = None, user_id: str | None = None, session_id: str | None = None,
             kind: Kind | None = None, tier: Tier | None = None, status: Status | str | None = None,
             tag: str | None = None, since: datetime | None = None, until: datetime | None = None,
             limit: int | None = None, cursor: str | None = None,
             include_forgotten: bool = False) -> Call[Page[MemCube]]:
        """One page of memories, newest first (`status="any"` for every status). Forgotten ones come with their
        content withheld; `include_forgotten=True` (an admin key) serves it."""
        return Call("GET", "/v1/memories", parse_model(Page[MemCube]), params=_json(
            agent_id=agent_id, user_id=user_id, session_id=session_id, kind=kind, tier=tier, status=status, tag=tag,
            since=since, until=until, limit=limit, cursor=cursor, include_forgotten=_flag(include_forgotten)))

    iter = pages(list)

    @endpoint("GET", "/v1/memories/{cube_id}")
    def get(self, cube_id: UUID | str, *, version: int | None = None, as_of: datetime | None = None,
            include_forgotten: bool = False) -> Call[MemCube | Version]:
        """The memory now, one of its versions, or the version current at `as_of`; a forgotten memory's content
        is withheld unless `include_forgotten=True` (an admin key)."""
        parse = parse_model(Version) if version is not None or as_of is not None else parse_model(MemCube)
        return Call("GET", f"/v1/memories/{cube_id}", parse, params=_json(
            version=version, as_of=as_of, include_forgotten=_flag(include_forgotten)))

    @endpoint("PATCH", "/v1/memories/{cube_id}")
    def update(self, cube_id: UUID | str, *, content: str = UNSET, data: Any = UNSET, tags: Sequence[str] = UNSET,
               metadata: dict[str, Any] = UNSET, kind: Kind = UNSET, tier: Tier = UNSET, status: str = UNSET,
               artifact: Artifact | dict[str, str] | None = UNSET, occurred_at: datetime | None = UNSET,
               valid_from: datetime | None = UNSET, valid_to: datetime | None = UNSET, importance: float = UNSET,
               confidence: float = UNSET, reason: str | None = None,
               if_match: int | None = None) -> Call[MemCube]:
        """Change the fields given (None clears a field that may be empty); a new version. `if_match` makes
        it conditional: StaleVersion when that version is no longer current."""
        changes = {key: _dump(value) for key, value in dict(
            content=content, data=data, tags=tags, metadata=metadata, kind=kind, tier=tier, status=status,
            artifact=artifact, occurred_at=occurred_at, valid_from=valid_from, valid_to=valid_to,
            importance=importance, confidence=confidence).items() if value is not UNSET}
        if reason is not None:
            changes["reason"] = reason
        return Call("PATCH", f"/v1/memories/{cube_id}", parse_model(MemCube), json=changes,
                    headers=_if_match(if_match))

    @endpoint("DELETE", "/v1/memories/{cube_id}")
    def forget(self, cube_id: UUID | str, *, erase: bool = False, reason: str | None = None,
               if_match: int | None = None) -> Call[MemCube]:
        """Forget a memory (a tombstone version; its content is withheld from then on); `erase=True` removes its
        content from every version, and every memory derived from it (the answer's extra fields `erased`,
        `windows_scrubbed`, `search_documents_refreshed` say what it touched)."""
        return Call("DELETE", f"/v1/memories/{cube_id}", parse_model(MemCube),
                    params=_json(erase="true" if erase else None, reason=reason), headers=_if_match(if_match))

    @endpoint("GET", "/v1/memories/{cube_id}/history")
    def history(self, cube_id: UUID | str, *, include_forgotten: bool = False) -> Call[list[Version]]:
        """Every version of a memory with its provenance, oldest first (withheld as `get` says)."""
        return Call("GET", f"/v1/memories/{cube_id}/history", _items(Version),
                    params=_json(include_forgotten=_flag(include_forgotten)))

    @endpoint("POST", "/v1/memories/fuse")
    def fuse(self, ids: Sequence[UUID | str], *, content: str | None = None, kind: Kind | None = None,
             tags: Sequence[str] | None = None, metadata: dict[str, Any] | None = None,
             importance: float | None = None, reason: str | None = None) -> Call[Fused]:
        """Merge active memories of one scope into a new one; the sources become superseded."""
        return Call("POST", "/v1/memories/fuse", parse_model(Fused), json=_json(
            ids=[str(i) for i in ids], content=content, kind=kind, tags=tags, metadata=metadata,
            importance=importance, reason=reason))

    @endpoint("POST", "/v1/memories/{cube_id}/links")
    def link(self, cube_id: UUID | str, target_id: UUID | str, *, type: str = "related",
             metadata: dict[str, Any] | None = None) -> Call[Link]:
        """Link two memories (related, supports, contradicts, part_of, derived_from)."""
        return Call("POST", f"/v1/memories/{cube_id}/links", parse_model(Link),
                    json=_json(target_id=target_id, type=type, metadata=metadata))

    @endpoint("GET", "/v1/memories/{cube_id}/links")
    def links(self, cube_id: UUID | str, *, limit: int | None = None) -> Call[list[Link]]:
        """The links from and to a memory."""
        return Call("GET", f"/v1/memories/{cube_id}/links", _items(Link), params=_json(limit=limit))


class Sessions(Resource[M]):
    """Conversations: messages in, the working window out (`/v1/sessions`)."""

    @endpoint("POST", "/v1/sessions/{session_id}/messages")
    def append(self, session_id: str, agent_id: str, messages: Sequence[MessageInput | dict[str, Any]], *,
               user_id: str | None = None) -> Call[Appended]:
        """Append messages to a session (durably, then to its working window); each gets its turn."""
        payload = [_dump(MessageInput.model_validate(m)) for m in messages]
        return Call("POST", f"/v1/sessions/{session_id}/messages", parse_model(Appended),
                    json=_json(agent_id=agent_id, user_id=user_id, messages=payload))

    @endpoint("GET", "/v1/sessions/{session_id}/working")
    def working(self, session_id: str, *, agent_id: str | None = None) -> Call[WorkingMemory]:
        """A session's working window (oldest first) and scratchpad."""
        return Call("GET", f"/v1/sessions/{session_id}/working", parse_model(WorkingMemory),
                    params=_json(agent_id=agent_id))

    @endpoint("PUT", "/v1/sessions/{session_id}/scratchpad")
    def set_scratchpad(self, session_id: str, content: str, *, agent_id: str | None = None) -> Call[Scratchpad]:
        """Replace a session's scratchpad (empty clears it)."""
        return Call("PUT", f"/v1/sessions/{session_id}/scratchpad", parse_model(Scratchpad),
                    json=body(content=content, agent_id=agent_id))

    @endpoint("GET", "/v1/sessions")
    def list(self, agent_id: str, *, user_id: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Call[Page[SessionSummary]]:
        """One page of an agent's sessions, newest first."""
        return Call("GET", "/v1/sessions", parse_model(Page[SessionSummary]),
                    params=_json(agent_id=agent_id, user_id=user_id, limit=limit, cursor=cursor))

    iter = pages(list)


class Core(Resource[M]):
    """Core memory: labelled blocks always in context (`/v1/agents/{agent_id}/core`)."""

    @endpoint("GET", "/v1/agents/{agent_id}/core")
    def get(self, agent_id: str, *, user_id: str | None = None) -> Call[CoreMemory]:
        """The core of an agent (or of one user of it): blocks, paged-in memories, tokens and budget."""
        return Call("GET", f"/v1/agents/{agent_id}/core", parse_model(CoreMemory), params=_json(user_id=user_id))

    @endpoint("GET", "/v1/agents/{agent_id}/core/{label}")
    def block(self, agent_id: str, label: str, *, user_id: str | None = None) -> Call[MemCube]:
        """One labelled block."""
        return Call("GET", f"/v1/agents/{agent_id}/core/{label}", parse_model(MemCube), params=_json(user_id=user_id))

    @endpoint("PUT", "/v1/agents/{agent_id}/core/{label}")
    def put(self, agent_id: str, label: str, content: str, *, user_id: str | None = None,
            metadata: dict[str, Any] | None = None, reason: str | None = None,
            if_match: int | None = None) -> Call[CoreBlockWritten]:
        """Create or change a block (the same content again changes nothing)."""
        return Call("PUT", f"/v1/agents/{agent_id}/core/{label}", parse_model(CoreBlockWritten),
                    params=_json(user_id=user_id), json=_json(content=content, metadata=metadata, reason=reason),
                    headers=_if_match(if_match))


class Agents(Resource[M]):
    """The agents of the tenant, and their background work (`/v1/agents`)."""

    @endpoint("GET", "/v1/agents")
    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Call[Page[AgentSummary]]:
        """One page of the tenant's agents with their counts."""
        return Call("GET", "/v1/agents", parse_model(Page[AgentSummary]), params=_json(limit=limit, cursor=cursor))

    iter = pages(list)

    @endpoint("POST", "/v1/agents/{agent_id}/consolidate")
    def consolidate(self, agent_id: str, *, user_id: str | None = None,
                    engine: str | None = None) -> Call[JobAccepted]:
        """Queue a consolidation of the agent (or one user of it); watch it with `jobs.get` or `jobs.wait`."""
        return Call("POST", f"/v1/agents/{agent_id}/consolidate", parse_model(JobAccepted),
                    json=_json(user_id=user_id, engine=engine))

    @endpoint("POST", "/v1/agents/{agent_id}/distill")
    def distill(self, agent_id: str, *, user_id: str | None = None, engine: str | None = None) -> Call[JobAccepted]:
        """Queue a distillation of the agent's trajectories into lessons."""
        return Call("POST", f"/v1/agents/{agent_id}/distill", parse_model(JobAccepted),
                    json=_json(user_id=user_id, engine=engine))


class Trajectories(Resource[M]):
    """What an agent did for a task and how it went (`/v1/trajectories`): the input of lessons."""

    @endpoint("POST", "/v1/trajectories")
    def record(self, agent_id: str, task: str, steps: Sequence[StepInput | dict[str, Any]], outcome: Outcome, *,
               user_id: str | None = None, session_id: str | None = None, score: float | None = None,
               feedback: str | None = None, lessons_used: Sequence[UUID | str] | None = None,
               occurred_at: datetime | None = None) -> Call[TrajectoryRecorded]:
        """Record a trajectory; the lessons it names in `lessons_used` get its outcome as feedback."""
        payload = [_dump(StepInput.model_validate(step)) for step in steps]
        return Call("POST", "/v1/trajectories", parse_model(TrajectoryRecorded), json=_json(
            agent_id=agent_id, task=task, steps=payload, outcome=outcome, user_id=user_id, session_id=session_id,
            score=score, feedback=feedback, lessons_used=lessons_used, occurred_at=occurred_at))

    @endpoint("GET", "/v1/trajectories")
    def list(self, agent_id: str, *, user_id: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Call[Page[TrajectoryView]]:
        """One page of an agent's trajectories, newest first."""
        return Call("GET", "/v1/trajectories", parse_model(Page[TrajectoryView]),
                    params=_json(agent_id=agent_id, user_id=user_id, limit=limit, cursor=cursor))

    iter = pages(list)


class Lessons(Resource[M]):
    """Lessons distilled from trajectories (`/v1/lessons`), and how they did when followed."""

    @endpoint("GET", "/v1/lessons")
    def list(self, agent_id: str, *, task: str | None = None, user_id: str | None = None,
             status: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Call[Page[LessonView]]:
        """The lessons for a task (best first by similarity × utility), or all of the agent's."""
        return Call("GET", "/v1/lessons", parse_model(Page[LessonView]), params=_json(
            agent_id=agent_id, task=task, user_id=user_id, status=status, limit=limit, cursor=cursor))

    iter = pages(list)

    @endpoint("POST", "/v1/lessons/{lesson_id}/feedback")
    def feedback(self, lesson_id: UUID | str, outcome: Outcome, *, note: str | None = None) -> Call[LessonView]:
        """Report how it went when a lesson was followed; its utility moves."""
        return Call("POST", f"/v1/lessons/{lesson_id}/feedback", parse_model(LessonView),
                    json=_json(outcome=outcome, note=note))


class Jobs(Resource[M]):
    """Background work (`/v1/jobs`)."""

    @endpoint("GET", "/v1/jobs/{job_id}")
    def get(self, job_id: UUID | str) -> Call[Job]:
        """One job: its state, counts, tokens and error."""
        return Call("GET", f"/v1/jobs/{job_id}", parse_model(Job))

    @endpoint("GET", "/v1/jobs")
    def list(self, *, agent_id: str | None = None, state: str | None = None, kind: str | None = None,
             limit: int | None = None, cursor: str | None = None) -> Call[Page[Job]]:
        """One page of the tenant's jobs, newest first."""
        return Call("GET", "/v1/jobs", parse_model(Page[Job]),
                    params=_json(agent_id=agent_id, state=state, kind=kind, limit=limit, cursor=cursor))

    iter = pages(list)


class Keys(Resource[M]):
    """API keys (`/v1/admin/keys`); needs a key with the `admin` scope, or the admin token."""

    @endpoint("POST", "/v1/admin/keys")
    def create(self, tenant: str, scopes: Sequence[str], *, name: str = "") -> Call[ApiKeyCreated]:
        """Issue a key; its token is in the answer, and only there."""
        return Call("POST", "/v1/admin/keys", parse_model(ApiKeyCreated),
                    json={"tenant": tenant, "scopes": list(scopes), "name": name})

    @endpoint("GET", "/v1/admin/keys")
    def list(self, *, tenant: str | None = None) -> Call[list[ApiKey]]:
        """The keys you may manage (never their tokens)."""
        return Call("GET", "/v1/admin/keys", _items(ApiKey), params=_json(tenant=tenant))

    @endpoint("DELETE", "/v1/admin/keys/{key_id}")
    def revoke(self, key_id: UUID | str) -> Call[ApiKey]:
        """Revoke a key: its token stops working at once."""
        return Call("DELETE", f"/v1/admin/keys/{key_id}", parse_model(ApiKey))


class Audit(Resource[M]):
    """The audit trail (`/v1/admin/audit`); needs a key with the `admin` scope, or the admin token."""

    @endpoint("GET", "/v1/admin/audit")
    def list(self, *, cube_id: UUID | str | None = None, key_id: UUID | str | None = None, route: str | None = None,
             outcome: str | None = None, request_id: str | None = None, tenant: str | None = None,
             since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
             cursor: str | None = None) -> Call[Page[AuditEntry]]:
        """One page of change requests, newest first."""
        return Call("GET", "/v1/admin/audit", parse_model(Page[AuditEntry]), params=_json(
            cube_id=cube_id, key_id=key_id, route=route, outcome=outcome, request_id=request_id, tenant=tenant,
            since=since, until=until, limit=limit, cursor=cursor))

    iter = pages(list)


class Memory(Resource[M]):
    """The calls that are not about one kind of thing: search, context, export and import, health."""

    @endpoint("POST", "/v1/search")
    def search(self, agent_id: str, query: str, *, user_id: str | None = None, session_id: str | None = None,
               k: int | None = None, kinds: Sequence[Kind] | None = None, tiers: Sequence[Tier] | None = None,
               tags: Sequence[str] | None = None, statuses: Sequence[Status] | None = None,
               as_of: datetime | None = None, include_shared: bool | None = None, derived: str | None = None,
               explain: bool | None = None) -> Call[SearchResult]:
        """Hybrid search of one agent (or one user of it), best first."""
        return Call("POST", "/v1/search", parse_model(SearchResult), json=_json(
            agent_id=agent_id, query=query, user_id=user_id, session_id=session_id, k=k, kinds=kinds, tiers=tiers,
            tags=tags, statuses=statuses, as_of=as_of, include_shared=include_shared, derived=derived,
            explain=explain))

    @endpoint("POST", "/v1/context")
    def context(self, agent_id: str, query: str, budget: int, *, user_id: str | None = None,
                session_id: str | None = None) -> Call[Context]:
        """A context for a prompt under a token budget: core, lessons, recalled memories, the working window."""
        return Call("POST", "/v1/context", parse_model(Context), json=_json(
            agent_id=agent_id, query=query, budget=budget, user_id=user_id, session_id=session_id))

    @endpoint("GET", "/v1/export")
    def export(self, sink: IO[bytes], *, agent_id: str | None = None) -> Call[None]:
        """Stream the tenant's memory (or one agent's) as NDJSON into a binary file object."""
        return Call("GET", "/v1/export", lambda response: None, params=_json(agent_id=agent_id), sink=sink,
                    idempotent=False)

    @endpoint("POST", "/v1/import")
    def import_batch(self, ndjson: bytes) -> Call[ImportResult]:
        """Import one batch of an export (its header line, then records): all or nothing, and again changes
        nothing. `import_` splits a whole export into batches."""
        return Call("POST", "/v1/import", parse_model(ImportResult), content=ndjson,
                    headers={"Content-Type": "application/x-ndjson"}, idempotent=True)

    @endpoint("GET", "/healthz")
    def health(self) -> Call[dict[str, Any]]:
        """Whether the API process is alive."""
        return Call("GET", "/healthz", parse_model(dict[str, Any]))

    @endpoint("GET", "/readyz")
    def ready(self) -> Call[dict[str, Any]]:
        """Whether the database, Redis and the broker answer (raises Unavailable when not)."""
        return Call("GET", "/readyz", parse_model(dict[str, Any]))


def split_export(data: bytes, max_bytes: int) -> list[bytes]:
    """Cut an export into import batches of about `max_bytes` at record boundaries, each starting with the
    export's header line (a record longer than `max_bytes` travels alone)."""
    lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    if not lines:
        return []
    header, records = lines[0], lines[1:]
    batches: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and size + len(record) > max_bytes:
            batches.append(header + b"".join(current))
            current, size = [], 0
        current.append(record)
        size += len(record)
    batches.append(header + b"".join(current))
    return batches


__all__ = ["Memories", "Sessions", "Core", "Agents", "Trajectories", "Lessons", "Jobs", "Keys", "Memory", "UNSET",
           "split_export", "Hit"]
