"""Core memory: labelled blocks (persona, human, ...) and the cubes paging brought in, per scope.

A scope is an agent (no user) or one user of an agent; each has its own core budget
(MEMCUBE_CORE_BUDGET_TOKENS). Blocks are cubes of kind and tier `core` with a label, versioned like
every cube; they are pinned (paging never moves them), so together they must fit the budget.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg

from memcube import paging, tokens
from memcube.config import Settings
from memcube.cube import check_content, provenance
from memcube.embedder import Embedder
from memcube.errors import InvalidInput, NotFound, StaleVersion, TooLarge
from memcube.models import LABEL_PATTERN, CoreBlockPut, CoreBlockWritten, CoreItem, CoreMemory, MemCubeCreate
from memcube.store import core as store
from memcube.store import cubes as cube_store


def core_items(rows: list[dict[str, Any]]) -> list[CoreItem]:
    """Return core cubes with their token counts."""
    counts = tokens.count_many([r["content"] for r in rows])
    return [CoreItem(tokens=n, **{k: r[k] for k in CoreItem.model_fields if k in r}) for r, n in zip(rows, counts)]


def get_core(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
             settings: Settings) -> CoreMemory:
    """Return the core of one scope, blocks first; raises NotFound for an agent with no memory at all."""
    rows = store.list_core(conn, tenant=tenant, agent_id=agent_id, user_id=user_id)
    if not rows and not store.agent_exists(conn, tenant=tenant, agent_id=agent_id):
        raise NotFound(f"agent {agent_id} not found")
    items = core_items(rows)
    return CoreMemory(agent_id=agent_id, user_id=user_id, budget_tokens=settings.core_budget_tokens,
                      tokens=sum(i.tokens for i in items), blocks=[i for i in items if i.label is not None],
                      pageable=[i for i in items if i.label is None])


def get_block(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None,
              label: str) -> dict[str, Any]:
    """Return the active block `label` of a scope; raises NotFound."""
    block = store.find_block(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, label=label)
    if block is None:
        raise NotFound(f"agent {agent_id} has no core block {label!r}"
                       + (f" for user {user_id!r}" if user_id is not None else ""))
    return block


def _check_block(content: str, label: str, others: int, settings: Settings) -> int:
    check_content(content, settings)
    n = tokens.count(content)
    if n > settings.core_block_max_tokens:
        raise TooLarge(f"core block {label!r} has {n} tokens; the limit is {settings.core_block_max_tokens} "
                       "(MEMCUBE_CORE_BLOCK_MAX_TOKENS)",
                       details={"limit": settings.core_block_max_tokens, "tokens": n})
    if others + n > settings.core_budget_tokens:
        raise TooLarge(f"the labelled core blocks of this scope would hold {others + n} tokens; the core budget is "
                       f"{settings.core_budget_tokens} (MEMCUBE_CORE_BUDGET_TOKENS), and blocks are never paged out",
                       details={"limit": settings.core_budget_tokens, "tokens": others + n})
    return n


def put_block(conn: psycopg.Connection, *, tenant: str, actor: str, agent_id: str, user_id: str | None, label: str,
              body: CoreBlockPut, embedder: Embedder, settings: Settings,
              if_match: int | None = None, vector: Any = None) -> tuple[CoreBlockWritten, bool]:
    """Create (version 1) or change (a new version) the block `label` of a scope, then page the scope; `vector`
    is the content's embedding, computed by the caller before it took a connection (else here).

    Returns the result and whether the block was created. Writing the same content again changes nothing.
    Raises TooLarge over the block size or the core budget, StaleVersion when `if_match` is not current.
    """
    if not re.fullmatch(LABEL_PATTERN, label):
        raise InvalidInput(f"label {label!r} must be letters, digits, '_', '.' or '-' (up to 64), starting with a "
                           "letter or digit")
    # One writer of a scope's blocks at a time: the budget check below reads the other blocks.
    store.lock(conn, "core-blocks", tenant, agent_id, user_id)
    current = store.find_block(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, label=label, lock=True)
    if if_match is not None and (current is None or current["version"] != if_match):
        version = None if current is None else current["version"]
        raise StaleVersion(f"core block {label!r} is at version {version}, not {if_match}",
                           details={"current_version": version})
    others = sum(i.tokens for i in core_items(store.list_core(conn, tenant=tenant, agent_id=agent_id,
                                                                user_id=user_id))
                 if i.label is not None and i.label != label)
    n = _check_block(body.content, label, others, settings)
    record = provenance("api", actor, reason=body.reason)
    if current is None:
        item = MemCubeCreate(agent_id=agent_id, user_id=user_id, kind="core", tier="core", content=body.content,
                             metadata=body.metadata or {}, importance=1.0)
        row = {**item.model_dump(exclude={"embedding"}), "id": uuid.uuid4(), "tenant": tenant, "label": label,
               "embedding": vector if vector is not None else embedder.embed([body.content])[0],
               "provenance": record}
        [block] = cube_store.insert_cubes(conn, [row])
    else:
        changes: dict[str, Any] = {"content": body.content, "kind": "core", "tier": "core"}
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if not changes:
            return CoreBlockWritten(block=current, tokens=n, paging=[]), False
        if "content" not in changes:
            vector = None
        elif vector is None:
            vector = embedder.embed([body.content])[0]
        block = cube_store.update_cube(conn, tenant=tenant, cube_id=current["id"], changes=changes,
                                       provenance=record, expected_version=current["version"], embedding=vector)
    moves = paging.apply_paging(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, settings=settings)
    return CoreBlockWritten(block=block, tokens=n, paging=moves), current is None
