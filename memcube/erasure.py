"""Erasure (the right to be forgotten): remove a cube's content from every place MemCube copied it.

The rule: erasing a cube erases it and every cube derived from it, transitively — fused cubes (their default
content is the sources joined), consolidated facts that took it as evidence, session summaries of its session
— because a derived cube's content may quote it and nothing can tell which words came from where. Each loses
its content, payload, tags, metadata and vector in every version, and the free text of its provenance
(`reason`, `source_refs`, ...); ids, versions, source and actor stay, so the tombstones still say what was
derived from what. In the same transaction: the search documents of the turns after each erased message are
written again (they held its words as look-back), and link metadata on the erased cubes is emptied. After
commit (`scrub_windows`), the messages leave their sessions' Redis windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
import redis

from memcube import working
from memcube.errors import StaleVersion
from memcube.store import cubes as cube_store
from memcube.store import erasure as store
from memcube.store import search_text

log = logging.getLogger(__name__)


@dataclass
class Erasure:
    """What an erasure did: the root's tombstone, every cube erased, and the windows to scrub after commit."""

    cube: dict[str, Any]
    erased: list[UUID]
    search_documents_refreshed: int
    turns: list[dict[str, Any]] = field(default_factory=list)
    windows_scrubbed: int = 0


def _descendants(conn: psycopg.Connection, tenant: str, root: dict[str, Any]) -> list[UUID]:
    """Return the cubes derived from the root, transitively, nearest first."""
    seen, order, frontier = {root["id"]}, [], [root["id"]]
    agents = {root["agent_id"]}
    while frontier:
        found = store.derived_children(conn, tenant=tenant, cube_ids=frontier, agent_ids=sorted(agents)) - seen
        rows = cube_store.get_cubes(conn, tenant=tenant, cube_ids=sorted(found))
        agents |= {row["agent_id"] for row in rows}
        frontier = [row["id"] for row in rows]
        seen.update(frontier)
        order.extend(frontier)
    return order


def erase_cube(conn: psycopg.Connection, *, tenant: str, actor: str, cube_id: UUID, reason: str | None = None,
               if_match: int | None = None) -> Erasure:
    """Erase a cube and every cube derived from it (see the module docstring), in the caller's transaction;
    erasing again finishes what is left and changes nothing else. Raises NotFound or StaleVersion."""
    root = cube_store.lock_cube(conn, tenant=tenant, cube_id=cube_id)
    if if_match is not None and root["version"] != if_match:
        raise StaleVersion(f"memory {cube_id} is at version {root['version']}, not {if_match}",
                           details={"current_version": root["version"]})
    derived = _descendants(conn, tenant, root)
    # Locked in id order, as fuse locks its sources: two such writers never wait on each other in a cycle.
    cube_store.lock_cubes(conn, tenant=tenant, cube_ids=sorted(derived))
    ids = [cube_id, *derived]
    record = {"source": "api", "actor": actor, "erasure": str(cube_id)}
    store.erase_cubes(conn, tenant=tenant, root=cube_id, cube_ids=ids,
                      root_provenance={**record, "reason": reason or "erased"},
                      provenance={**record, "reason": f"erased with {cube_id}, derived from it"})
    # Its words leave its own search document and the look-back of the turns after each erased message.
    followers = sorted(set(search_text.follower_ids(conn, tenant=tenant, cube_ids=ids)) - set(ids))
    before = store.documents(conn, tenant=tenant, cube_ids=followers)
    search_text.refresh_search_text(conn, tenant=tenant, cube_ids=ids)
    after = store.documents(conn, tenant=tenant, cube_ids=followers)
    return Erasure(cube=cube_store.get_cube(conn, tenant=tenant, cube_id=cube_id), erased=ids,
                   search_documents_refreshed=sum(before[i] != after.get(i) for i in before),
                   turns=store.session_turns(conn, tenant=tenant, cube_ids=ids))


def scrub_windows(client: redis.Redis, erasure: Erasure) -> int:
    """After the erasure committed, remove its messages from their sessions' Redis windows; return how many
    windows held one. A window Redis could not reach is no leak: every read checks a window against the durable
    turns and rebuilds it without the erased ones."""
    sessions: dict[tuple[str, str], list[int]] = {}
    for row in erasure.turns:
        sessions.setdefault((row["agent_id"], row["session_id"]), []).append(row["turn"])
    scrubbed = 0
    for (agent_id, session_id), turns in sessions.items():
        key = working.window_key(erasure.cube["tenant"], agent_id, session_id)
        try:
            scrubbed += working.remove_turns(client, key, turns) > 0
        except redis.RedisError as exc:
            log.warning("erased messages not removed from the window of session %s (%s); its next read rebuilds it",
                        session_id, exc)
    erasure.windows_scrubbed = scrubbed
    return scrubbed
