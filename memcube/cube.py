"""Operations on cubes: create, read, change, forget, erase, fuse, link. Each change is one new version."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from memcube import erasure, vector_index
from memcube.config import Settings
from memcube.consolidation.trigger import note_episodes
from memcube.embedder import Embedder, check_vector
from memcube.errors import Conflict, Forbidden, InvalidInput, StaleVersion, TooLarge
from memcube.models import CubeFilter, FuseRequest, LinkCreate, MemCubeCreate, MemCubePatch
from memcube.poisoning import origin_of, row_origin, screen
from memcube.store import core as core_store
from memcube.store import cubes as store
from memcube.store import links as link_store
from memcube.store.cursor import check_limit


def provenance(source: str, actor: str, *, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a provenance record; empty values are left out."""
    record: dict[str, Any] = {"source": source, "actor": actor, "reason": reason, **extra}
    return {key: value for key, value in record.items() if value not in (None, [], {})}


def embedding_text(item: MemCubeCreate | dict[str, Any]) -> str:
    """Return the text a cube is embedded from (an artifact without content is embedded by its reference)."""
    content = item["content"] if isinstance(item, dict) else item.content
    if content.strip():
        return content
    artifact = item.get("artifact") if isinstance(item, dict) else item.artifact
    if artifact is None:
        return content
    ref = artifact if isinstance(artifact, dict) else artifact.model_dump()
    return f"{ref['format']} {ref['uri']}"


# What a forgotten cube withholds wherever it is served (GET, history, list, the answer of DELETE): forgetting is
# a soft delete. Its status, lineage and record times stay visible; an admin may ask for the rest.
WITHHELD: dict[str, Any] = {"content": "", "data": None, "tags": [], "metadata": {}, "artifact": None}


def withhold(row: dict[str, Any], forgotten: bool | None = None) -> dict[str, Any]:
    """Return a cube or version as served: with its content, payload, tags, metadata and artifact withheld when
    the cube is forgotten (`forgotten`; by default, the row's own status)."""
    if forgotten is None:
        forgotten = row["status"] == "forgotten"
    return {**row, **WITHHELD} if forgotten else row


def check_content(content: str, settings: Settings, *, where: str = "content") -> None:
    """Raise TooLarge when content is over the configured limit."""
    if len(content) > settings.max_content_chars:
        raise TooLarge(
            f"{where} has {len(content)} characters; the limit is {settings.max_content_chars} "
            "(MEMCUBE_MAX_CONTENT_CHARS)",
            details={"limit": settings.max_content_chars, "field": where})


# Writes whose content comes from outside and is screened for poisoning; derived content (consolidation,
# distillation, paging) comes from memories already screened.
SCREENED_SOURCES = frozenset({"api", "message"})


def _screened(item: MemCubeCreate, source: str, record: dict[str, Any], settings: Settings, status: str) -> str:
    """Return the status a new cube is stored with: `quarantined` when its content reads as instructions to
    the agent (memcube/poisoning.py), with the verdict put in its provenance `record`; else `active`."""
    role = item.metadata.get("role") if source == "message" else None
    origin = origin_of(source=source, origin=item.origin, role=role if isinstance(role, str) else None)
    if item.origin is not None:
        record["origin"] = item.origin
    if not settings.poison_screen or source not in SCREENED_SOURCES or status != "active":
        return status
    if not _poisoned(item.content, origin, record, settings):
        return status
    record["origin"] = origin
    return "quarantined"


def _poisoned(text: str, origin: str, record: dict[str, Any], settings: Settings) -> bool:
    """Screen text written by `origin`; when it reads as instructions to the agent, put the verdict and its
    reason into the provenance `record` and return True."""
    verdict = screen(text, origin=origin, threshold=settings.poison_threshold, trust=settings.poison_trust)
    if verdict.quarantined:
        record.update(poisoning=verdict.record(),
                      reason="; ".join(r for r in (record.get("reason"), verdict.reason) if r))
    return verdict.quarantined


def _check_create(items: Sequence[MemCubeCreate], settings: Settings) -> None:
    if not items:
        raise InvalidInput("items must not be empty")
    if len(items) > settings.max_batch_items:
        raise TooLarge(f"a batch holds at most {settings.max_batch_items} items (MEMCUBE_MAX_BATCH_ITEMS); "
                       f"got {len(items)}", details={"limit": settings.max_batch_items})
    for index, item in enumerate(items):
        where = "content" if len(items) == 1 else f"items[{index}].content"
        check_content(item.content, settings, where=where)
        if len(item.tags) > settings.max_tags:
            raise TooLarge(f"a cube has at most {settings.max_tags} tags (MEMCUBE_MAX_TAGS)",
                           details={"limit": settings.max_tags, "index": index})


def embed_items(items: Sequence[MemCubeCreate], embedder: Embedder, settings: Settings) -> list[Any]:
    """Check a create and return one vector per item (the client's, normalized, or computed), with no
    connection held: writers embed first, then take a connection. Raises TooLarge or InvalidInput."""
    _check_create(items, settings)
    return _embed_items(items, embedder)


def _embed_items(items: Sequence[MemCubeCreate], embedder: Embedder) -> list[Any]:
    """One vector per item: a list from the embedder, or a float32 array for a client's vector."""
    vectors: list[Any] = [None] * len(items)
    todo = []
    for index, item in enumerate(items):
        if item.embedding is not None:
            try:
                vectors[index] = check_vector(item.embedding, embedder.dim)
            except InvalidInput as exc:
                prefix = f"items[{index}]: " if len(items) > 1 else ""
                raise InvalidInput(prefix + exc.message, details={**(exc.details or {}), "index": index}) from exc
        else:
            todo.append(index)
    if todo:
        computed = embedder.embed([embedding_text(items[i]) for i in todo])
        for index, vector in zip(todo, computed):
            vectors[index] = vector
    return vectors  # type: ignore[return-value]


def create_cubes(conn: psycopg.Connection, *, tenant: str, actor: str, items: Sequence[MemCubeCreate],
                 embedder: Embedder, settings: Settings, source: str = "api",
                 extra_provenance: Sequence[dict[str, Any]] | None = None,
                 vectors: Sequence[Any] | None = None, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Create cubes atomically and return them in order, with `vectors` from `embed_items` (computed here when
    None) and `statuses` (default active; content that reads as instructions to the agent is stored
    quarantined, memcube/poisoning.py); raises TooLarge or InvalidInput and stores nothing."""
    _check_create(items, settings)
    if vectors is None:
        vectors = _embed_items(items, embedder)
    rows = []
    for index, (item, vector) in enumerate(zip(items, vectors)):
        record = provenance(source, actor, **(extra_provenance[index] if extra_provenance else {}))
        row = item.model_dump(exclude={"embedding", "origin"})
        row.update(id=uuid.uuid4(), tenant=tenant, embedding=vector,
                   status=_screened(item, source, record, settings, statuses[index] if statuses else "active"),
                   provenance=record)
        rows.append(row)
    created = store.insert_cubes(conn, rows)
    # A scope this write takes past the exact plan's size starts entering the HNSW index (vector_index.py).
    vector_index.WATCH.note_writes(conn, tenant=tenant, rows=created, threshold=settings.exact_scan_max_rows)
    # Episodes count toward their scope's next consolidation, in this same transaction (trigger.py).
    note_episodes(conn, tenant=tenant, rows=created, settings=settings)
    return created


def read_cube(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, version: int | None = None,
              as_of: datetime | None = None, include_forgotten: bool = False) -> dict[str, Any]:
    """Return the current cube, one version of it, or the version current at `as_of`, withheld when the cube is
    forgotten (every version of it) unless `include_forgotten`; raises NotFound."""
    if version is not None and as_of is not None:
        raise InvalidInput("give `version` or `as_of`, not both")
    current = store.get_cube(conn, tenant=tenant, cube_id=cube_id)
    row = current
    if version is not None:
        row = store.get_version(conn, tenant=tenant, cube_id=cube_id, version=version)
    elif as_of is not None:
        row = store.get_version_as_of(conn, tenant=tenant, cube_id=cube_id, as_of=as_of)
    return row if include_forgotten else withhold(row, current["status"] == "forgotten")


def _lock_for_change(conn: psycopg.Connection, tenant: str, cube_id: UUID, if_match: int | None) -> dict[str, Any]:
    current = store.lock_cube(conn, tenant=tenant, cube_id=cube_id)
    if if_match is not None and current["version"] != if_match:
        raise StaleVersion(f"memory {cube_id} is at version {current['version']}, not {if_match}",
                           details={"current_version": current["version"]})
    return current


def _refuse_block_change(current: dict[str, Any], what: set[str]) -> None:
    """Raise Conflict when `what` would change a labelled core block outside its own route, which checks
    the block size and the core budget and keeps blocks pinned in core."""
    if what and current.get("label") is not None:
        user = f"?user_id={current['user_id']}" if current["user_id"] else ""
        raise Conflict(
            f"memory {current['id']} is the core block {current['label']!r} of agent {current['agent_id']!r}: "
            f"its {', '.join(sorted(what))} changes only through PUT /v1/agents/{current['agent_id']}/core/"
            f"{current['label']}{user}, which checks its size and the core budget",
            details={"label": current["label"], "refused": sorted(what)})


def _refuse_second_block(conn: psycopg.Connection, current: dict[str, Any]) -> None:
    """Raise Conflict when another active block of the scope holds the label of a block being made active again
    (one active block per label and scope)."""
    scope = {"tenant": current["tenant"], "agent_id": current["agent_id"], "user_id": current["user_id"]}
    # The lock PUT of a block takes: no block of the label can become active between this check and commit.
    core_store.lock(conn, "core-blocks", *scope.values())
    other = core_store.find_block(conn, **scope, label=current["label"])
    if other is not None and other["id"] != current["id"]:
        user = f"?user_id={current['user_id']}" if current["user_id"] else ""
        raise Conflict(
            f"memory {current['id']} cannot be active again: the core block {current['label']!r} of agent "
            f"{current['agent_id']!r} is now memory {other['id']} (one active block per label); change that one "
            f"through PUT /v1/agents/{current['agent_id']}/core/{current['label']}{user}, or quarantine it first",
            details={"label": current["label"], "active_id": str(other["id"])})


# An embedding made before a change takes its lock: the text it was made from, and the vector.
Prepared = tuple[str, list[float]]


def _vector_for(text: str, prepared: Prepared | None, embedder: Embedder) -> list[float]:
    """The prepared vector when it was made from `text`; else (the cube changed in between) embed it now."""
    if prepared is not None and prepared[0] == text:
        return prepared[1]
    return embedder.embed([text])[0]


def _patch_changes(patch: MemCubePatch, settings: Settings) -> dict[str, Any]:
    changes = patch.changes()
    if not changes:
        raise InvalidInput("the patch changes nothing: give at least one field")
    if "content" in changes:
        check_content(changes["content"], settings)
    if "tags" in changes and len(changes["tags"]) > settings.max_tags:
        raise TooLarge(f"a cube has at most {settings.max_tags} tags (MEMCUBE_MAX_TAGS)",
                       details={"limit": settings.max_tags})
    if "artifact" in changes and changes["artifact"] is not None:
        changes["artifact"] = patch.artifact.model_dump()  # type: ignore[union-attr]
    return changes


def prepare_patch(pool: ConnectionPool, *, tenant: str, cube_id: UUID, patch: MemCubePatch, embedder: Embedder,
                  settings: Settings) -> Prepared | None:
    """Embed what a patch will embed, before its transaction: read the cube (a connection held for that read
    only), embed with none held. None when the patch embeds nothing or the cube is not there (the patch then
    answers for itself). Raises what the patch's own checks raise."""
    changes = _patch_changes(patch, settings)
    if "content" not in changes and "artifact" not in changes:
        return None
    with pool.connection() as conn:
        current = store.find_cube(conn, tenant=tenant, cube_id=cube_id)
    if current is None:
        return None
    text = embedding_text({**current, **changes})
    return text, embedder.embed([text])[0]


def patch_cube(conn: psycopg.Connection, *, tenant: str, actor: str, cube_id: UUID, patch: MemCubePatch,
               embedder: Embedder, settings: Settings, if_match: int | None = None,
               source: str = "api", prepared: Prepared | None = None, may_release: bool = True) -> dict[str, Any]:
    """Apply a change as a new version; raises NotFound, StaleVersion, Conflict (forgotten cube), InvalidInput, or
    Forbidden when a memory the poisoning screen quarantined would leave quarantine and not `may_release`.

    `prepared` (from `prepare_patch`, made before the lock) is the new embedding; it is used when the text it
    was made from is still the one to embed, else the embedding is made here."""
    changes = _patch_changes(patch, settings)
    current = _lock_for_change(conn, tenant, cube_id, if_match)
    if current["status"] == "forgotten":
        raise Conflict(f"memory {cube_id} is forgotten and cannot change")
    _refuse_block_change(current, set(changes) & {"content", "kind", "tier"})
    if current["status"] == "quarantined" and changes.get("status", "quarantined") != "quarantined" \
            and (current["provenance"] or {}).get("poisoning") and not may_release:
        # Else whoever wrote poisoned text could release it themselves.
        raise Forbidden(f"memory {cube_id} was quarantined by the poisoning screen; releasing it needs the `admin` "
                        "scope", details={"needed": "admin"})
    if current.get("label") is not None and changes.get("status") == "active" and current["status"] != "active":
        _refuse_second_block(conn, current)
    merged = {**current, **changes}
    if merged["valid_from"] and merged["valid_to"] and merged["valid_to"] < merged["valid_from"]:
        raise InvalidInput("valid_to must not be before valid_from")
    if merged["kind"] == "artifact" and merged["artifact"] is None:
        raise InvalidInput("an artifact cube needs `artifact` (uri, format, checksum)")
    vector = None
    if "content" in changes or "artifact" in changes:
        vector = _vector_for(embedding_text(merged), prepared, embedder)
    record = provenance(source, actor, reason=patch.reason)
    if "content" in changes and merged["status"] == "active" and source in SCREENED_SOURCES \
            and current.get("label") is None and settings.poison_screen:
        # New words are screened as a new memory's are: a change cannot slip instructions past the write check.
        if _poisoned(changes["content"], row_origin(current), record, settings):
            changes["status"] = "quarantined"
    return store.update_cube(conn, tenant=tenant, cube_id=cube_id, changes=changes, provenance=record,
                             expected_version=current["version"], embedding=vector)


def forget_cube(conn: psycopg.Connection, *, tenant: str, actor: str, cube_id: UUID, erase: bool = False,
                reason: str | None = None, if_match: int | None = None) -> dict[str, Any]:
    """Write a tombstone version (status forgotten) and return it; with `erase`, erase the cube and every cube
    derived from it (memcube.erasure; the caller scrubs the Redis windows after commit).

    Forgetting a forgotten cube again changes nothing. Raises NotFound or StaleVersion.
    """
    if erase:
        return erasure.erase_cube(conn, tenant=tenant, actor=actor, cube_id=cube_id, reason=reason,
                                  if_match=if_match).cube
    current = _lock_for_change(conn, tenant, cube_id, if_match)
    record = provenance("api", actor, reason=reason or "forgotten")
    if current["status"] == "forgotten":
        return current
    return store.update_cube(conn, tenant=tenant, cube_id=cube_id, changes={"status": "forgotten"},
                             provenance=record, expected_version=current["version"])


def _fused_item(request: FuseRequest, sources: Sequence[dict[str, Any]]) -> MemCubeCreate:
    """The new cube a fusion makes of its sources."""
    content = request.content or "\n".join(s["content"] for s in sources)
    first = sources[0]
    return MemCubeCreate(
        agent_id=first["agent_id"], user_id=first["user_id"],
        session_id=first["session_id"] if len({s["session_id"] for s in sources}) == 1 else None,
        kind=request.kind or first["kind"], tier=first["tier"], content=content,
        tags=request.tags if request.tags is not None else sorted({t for s in sources for t in s["tags"]}),
        metadata=request.metadata if request.metadata is not None else {},
        importance=request.importance if request.importance is not None else max(s["importance"] for s in sources),
        confidence=max(s["confidence"] for s in sources),
        artifact=first["artifact"] if (request.kind or first["kind"]) == "artifact" else None,
    )


def prepare_fuse(pool: ConnectionPool, *, tenant: str, request: FuseRequest, embedder: Embedder) -> Prepared | None:
    """Embed the fused cube before the fusion's transaction (its sources read without a lock, with a
    connection held for that read only); None when a source is missing (the fusion answers for itself)."""
    ids = list(dict.fromkeys(request.ids))
    with pool.connection() as conn:
        sources = store.get_cubes(conn, tenant=tenant, cube_ids=ids)
    if len(sources) != len(ids) or len(ids) < 2:
        return None
    text = embedding_text(_fused_item(request, sources))
    return text, embedder.embed([text])[0]


def fuse_cubes(conn: psycopg.Connection, *, tenant: str, actor: str, request: FuseRequest, embedder: Embedder,
               settings: Settings, source: str = "api",
               prepared: Prepared | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge active cubes of one agent into a new cube; the sources become superseded and point at it.

    Returns (the new cube, the superseded sources). Raises NotFound, Conflict or InvalidInput.
    """
    ids = list(dict.fromkeys(request.ids))
    if len(ids) < 2:
        raise InvalidInput("fuse needs at least two different ids")
    sources = store.lock_cubes(conn, tenant=tenant, cube_ids=ids)
    for row in sources:
        _refuse_block_change(row, {"fuse"})
    inactive = [str(s["id"]) for s in sources if s["status"] != "active"]
    if inactive:
        raise Conflict(f"only active memories can be fused; not active: {', '.join(inactive)}",
                       details={"inactive": inactive})
    scopes = {(s["agent_id"], s["user_id"]) for s in sources}
    if len(scopes) > 1:
        raise InvalidInput("fused memories must share agent_id and user_id")
    item = _fused_item(request, sources)
    lineage = [{"id": str(s["id"]), "version": s["version"]} for s in sources]
    vectors = [_vector_for(embedding_text(item), prepared, embedder)]
    [fused] = create_cubes(conn, tenant=tenant, actor=actor, items=[item], embedder=embedder, settings=settings,
                           source=source, extra_provenance=[{"derived_from": lineage, "reason": request.reason}],
                           vectors=vectors)
    superseded = []
    for s in sources:
        superseded.append(store.update_cube(
            conn, tenant=tenant, cube_id=s["id"], expected_version=s["version"],
            changes={"status": "superseded", "superseded_by": fused["id"]},
            provenance=provenance(source, actor, reason=request.reason or f"fused into {fused['id']}")))
    for s in sources:
        link_store.insert_link(conn, tenant=tenant, source_id=fused["id"], target_id=s["id"], type="derived_from",
                               metadata={}, provenance=provenance(source, actor, reason="fuse"))
    return fused, superseded


def link_cubes(conn: psycopg.Connection, *, tenant: str, actor: str, source_id: UUID,
               link: LinkCreate) -> dict[str, Any]:
    """Link two cubes of the tenant; linking the same pair with the same type again returns the existing link.

    Raises NotFound when either cube is not in the tenant, InvalidInput for a self-link.
    """
    if source_id == link.target_id:
        raise InvalidInput("a memory cannot be linked to itself")
    store.get_cube(conn, tenant=tenant, cube_id=source_id)
    store.get_cube(conn, tenant=tenant, cube_id=link.target_id)
    return link_store.insert_link(conn, tenant=tenant, source_id=source_id, target_id=link.target_id,
                                  type=link.type, metadata=link.metadata,
                                  provenance=provenance("api", actor))


def list_links(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, limit: int) -> list[dict[str, Any]]:
    """Return the links from and to a cube; raises NotFound."""
    store.get_cube(conn, tenant=tenant, cube_id=cube_id)
    return link_store.list_links(conn, tenant=tenant, cube_id=cube_id, limit=limit)


def list_cubes(conn: psycopg.Connection, *, tenant: str, filters: CubeFilter, limit: int,
               cursor: str | None, include_forgotten: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of the tenant's cubes matching `filters`, newest first (forgotten ones withheld unless
    `include_forgotten`), and the next page's cursor (None at the end); raises InvalidInput for a bad limit or
    cursor."""
    check_limit(limit)
    values = filters.model_dump()
    if values["status"] == "any":
        values["status"] = None
    rows, next_cursor = store.list_cubes(conn, tenant=tenant, filters=values, limit=limit, cursor=cursor)
    return (rows if include_forgotten else [withhold(row) for row in rows]), next_cursor


def history(conn: psycopg.Connection, *, tenant: str, cube_id: UUID,
            include_forgotten: bool = False) -> list[dict[str, Any]]:
    """Return every version of a cube, oldest first, withheld when the cube is forgotten unless
    `include_forgotten`; raises NotFound."""
    rows = store.list_versions(conn, tenant=tenant, cube_id=cube_id)
    # The last version is the current state: every change writes one.
    forgotten = rows[-1]["status"] == "forgotten"
    return rows if include_forgotten or not forgotten else [withhold(row, True) for row in rows]

