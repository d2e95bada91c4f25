"""Lineage: what a cube was derived from and what was derived from it, a few levels each way.

Both records of derivation count: the `derived_from` entries of any version's provenance (a fact keeps the
episodes it came from even after a later change rewrote its current provenance) and `derived_from` links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from memcube.models import Lineage, LineageNode
from memcube.store import cubes as cube_store
from memcube.store import lineage as store

# (the older cube, the newer one derived from it, the version of the older one it names, how it is known)
Edge = tuple[UUID, UUID, int | None, str]
SNIPPET_CHARS = 200


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parents(conn: psycopg.Connection, tenant: str, ids: list[UUID], limit: int) -> list[tuple[UUID, Edge]]:
    """(child, edge) for every cube the given ones were derived from."""
    found = []
    for row in store.named_in_versions(conn, tenant=tenant, cube_ids=ids):
        ref = _uuid(row["ref_id"])
        if ref is not None:
            found.append((row["cube_id"], (ref, row["cube_id"], _int(row["ref_version"]), "provenance")))
    for row in store.links_from(conn, tenant=tenant, cube_ids=ids, limit=limit):
        found.append((row["source_id"], (row["target_id"], row["source_id"], None, "link")))
    return found


def _children(conn: psycopg.Connection, tenant: str, agent_id: str, ids: list[UUID],
              limit: int) -> list[tuple[UUID, Edge]]:
    """(parent, edge) for every cube derived from the given ones."""
    found = []
    for row in store.naming(conn, tenant=tenant, agent_id=agent_id, ref_ids=ids, limit=limit):
        ref = _uuid(row["ref_id"])
        if ref is not None:
            found.append((ref, (ref, row["id"], _int(row["ref_version"]), "provenance")))
    for row in store.links_to(conn, tenant=tenant, cube_ids=ids, limit=limit):
        found.append((row["target_id"], (row["target_id"], row["source_id"], None, "link")))
    return found


def _node(cube_id: UUID, version: int | None, via: list[str], row: dict[str, Any] | None) -> LineageNode:
    if row is None:
        return LineageNode(id=cube_id, version=version, via=via, found=False)  # type: ignore[arg-type]
    return LineageNode(id=cube_id, version=version, via=via, kind=row["kind"], tier=row["tier"],  # type: ignore[arg-type]
                       # A forgotten cube's words stay withheld here too (memcube/cube.py WITHHELD).
                       status=row["status"], content="" if row["status"] == "forgotten" else
                       row["content"][:SNIPPET_CHARS])


def _walk(conn: psycopg.Connection, tenant: str, root: UUID, step: Callable[[list[UUID]], list[tuple[UUID, Edge]]],
          *, up: bool, depth: int, width: int) -> tuple[list[LineageNode], bool]:
    """Breadth-first from the root, one query round per level; each cube appears once, under the first cube
    that reached it. Returns the top level and whether a level was cut at `width`."""
    seen = {root}
    top: list[LineageNode] = []
    frontier: dict[UUID, list[LineageNode]] = {root: top}
    truncated = False
    for _ in range(depth):
        if not frontier:
            break
        merged: dict[tuple[UUID, UUID], tuple[int | None, list[str]]] = {}
        for here, (older, newer, version, via) in step(list(frontier)):
            other = older if up else newer
            if here not in frontier or other in seen:
                continue
            known_version, vias = merged.get((here, other), (None, []))
            merged[(here, other)] = (version if version is not None else known_version,
                                     sorted(set(vias) | {via}))
        pairs = list(merged.items())
        if len(pairs) > width:
            truncated, pairs = True, pairs[:width]
        rows = {r["id"]: r for r in cube_store.get_cubes(conn, tenant=tenant, cube_ids=[o for (_, o), _ in pairs])}
        following: dict[UUID, list[LineageNode]] = {}
        for (here, other), (version, vias) in pairs:
            if other in seen:
                continue
            seen.add(other)
            node = _node(other, version, vias, rows.get(other))
            frontier[here].append(node)
            following[other] = node.next
        frontier = following
    return top, truncated


def get_lineage(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, depth: int = 3,
                width: int = 50) -> Lineage:
    """Return the cubes a cube was derived from and those derived from it, up to `depth` levels each way and
    `width` cubes a level; raises NotFound. Ancestors come from the provenance of every version; descendants known
    only by provenance are found by their current version, among the cubes of the same agent (links reach any
    agent of the tenant, whatever changed since)."""
    root = cube_store.get_cube(conn, tenant=tenant, cube_id=cube_id)
    limit = width * 4
    ancestors, cut_up = _walk(conn, tenant, cube_id, lambda ids: _parents(conn, tenant, ids, limit), up=True,
                              depth=depth, width=width)
    descendants, cut_down = _walk(conn, tenant, cube_id,
                                  lambda ids: _children(conn, tenant, root["agent_id"], ids, limit), up=False,
                                  depth=depth, width=width)
    return Lineage(id=cube_id, ancestors=ancestors, descendants=descendants, truncated=cut_up or cut_down)
