"""Export and import: a tenant's (or an agent's) memory as canonical NDJSON, and back.

Canonical means that the same memory gives the same bytes: keys sorted, no spaces, times in UTC with
microseconds, records in a fixed order (cubes in the order they were written, links and sessions oldest
first). Nothing names the tenant or the time of the export, so exporting, importing into an empty tenant of
another deployment and exporting again gives the very same file. An import keeps ids, versions, lineage,
links, sessions and vectors (re-embedding when the embedder differs); it is one transaction, and importing
the same file again changes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterator, Sequence
from uuid import UUID

import psycopg
import psycopg_pool
from pydantic import ValidationError

from memcube import vector_index
from memcube.consolidation.trigger import note_episodes
from memcube.lessons.trigger import note_trajectory
from memcube.config import Settings
from memcube.cube import WITHHELD, embedding_text
from memcube.embedder import Embedder
from memcube.errors import Conflict, InvalidInput, Malformed
from memcube.models.portability import (EXPORT_FORMAT, EXPORT_VERSION, CubeRecord, ExportHeader, ImportResult,
                                        LinkRecord, SessionRecord, timestamp_text)
from memcube.store import portability as store
from memcube.store import search_text
from memcube.store.consolidation import ScopeKey

RECORDS = {"cube": CubeRecord, "link": LinkRecord, "session": SessionRecord}
# Problems listed in an error's details, at most.
MAX_PROBLEMS = 20


def canonical(record: dict[str, Any]) -> bytes:
    """One NDJSON line: sorted keys, no spaces, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode() + b"\n"


def _plain(value: Any) -> Any:
    """Turn what rows hold (times, UUIDs, vectors) into what canonical JSON holds."""
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_list"):  # a vector from pgvector (float32: each float32 prints exactly)
        return [float(x) for x in value.to_list()]
    return value


def _cube_record(row: dict[str, Any], *, withhold_forgotten: bool = False) -> dict[str, Any]:
    if withhold_forgotten and row["status"] == "forgotten":
        # As GET serves it to such a caller: no content, payload, tags, metadata, artifact, or vector (which
        # would give the content's meaning away), in any version.
        row = {**row, **WITHHELD, "embedding": None,
               "versions": [{**version, **WITHHELD} for version in row["versions"]]}
    record = {k: v for k, v in row.items() if k not in ("tenant", "trajectory_at", "trajectory_distilled_at")}
    record["trajectory"] = None if row["trajectory_at"] is None else {
        "created_at": row["trajectory_at"], "distilled_at": row["trajectory_distilled_at"]}
    record["versions"] = [{k: v for k, v in version.items() if k != "tenant"} for version in row["versions"]]
    return {"record": "cube", **_plain(record)}


def export_lines(conn: psycopg.Connection, *, tenant: str, agent_id: str | None,
                 withhold_forgotten: bool = False) -> Iterator[bytes]:
    """Yield the export of a tenant (or one agent of it) line by line: the header, then cubes, links and
    sessions. Reads in the caller's transaction, which should be one snapshot (REPEATABLE READ). With
    `withhold_forgotten`, forgotten cubes come without what forgetting withholds (memcube/cube.py)."""
    embedder = store.find_embedder(conn)
    yield canonical({"record": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "agent_id": agent_id,
                     "embedder": dict(embedder) if embedder else None})
    for rows in store.iter_cubes(conn, tenant=tenant, agent_id=agent_id):
        for row in rows:
            yield canonical(_cube_record(row, withhold_forgotten=withhold_forgotten))
    for link in store.list_links(conn, tenant=tenant, agent_id=agent_id):
        yield canonical({"record": "link", **_plain(link)})
    for session in store.list_sessions(conn, tenant=tenant, agent_id=agent_id):
        yield canonical({"record": "session", **_plain(session)})


def stream_export(pool: psycopg_pool.ConnectionPool, *, tenant: str, agent_id: str | None,
                  withhold_forgotten: bool = False) -> Iterator[bytes]:
    """Yield the export line by line from one snapshot, holding a connection of its own until the last line
    (or until the consumer stops)."""
    with pool.connection() as conn:
        store.begin_snapshot(conn)
        yield from export_lines(conn, tenant=tenant, agent_id=agent_id, withhold_forgotten=withhold_forgotten)


def parse_export(body: bytes) -> tuple[ExportHeader, list[CubeRecord], list[LinkRecord], list[SessionRecord]]:
    """Read an export (or one batch of it); raises Malformed for a line that is not JSON, InvalidInput for a
    record that is not valid, naming the line."""
    lines = [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InvalidInput("the import is empty: send an export (a header line, then records)")
    parsed = []
    for n, line in lines:
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Malformed(f"line {n} is not JSON: {exc}", details={"line": n}) from exc
        if not isinstance(value, dict):
            raise InvalidInput(f"line {n} is not a JSON object", details={"line": n})
        parsed.append((n, value))
    header = _validate(ExportHeader, *parsed[0], expected="the header ({\"record\": \"header\", ...})")
    cubes, links, sessions = [], [], []
    for n, value in parsed[1:]:
        kind = value.get("record")
        model = RECORDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise InvalidInput(f"line {n}: unknown record {kind!r}; expected one of {', '.join(RECORDS)}",
                               details={"line": n, "record": kind})
        record = _validate(model, n, value, expected=f"a {kind} record")
        {"cube": cubes, "link": links, "session": sessions}[kind].append(record)
    return header, cubes, links, sessions


def _validate(model: Any, n: int, value: dict[str, Any], *, expected: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = problems[0]
        raise InvalidInput(f"line {n} is not {expected}: {first['field']}: {first['message']}",
                           details={"line": n, "problems": problems[:MAX_PROBLEMS]}) from exc


def import_export(conn: psycopg.Connection, *, tenant: str, body: bytes, embedder: Embedder,
                  settings: Settings) -> ImportResult:
    """Import an export (or one batch of it) into the tenant, in the caller's transaction: everything or, on
    any error, nothing. Records already there are left as they are, so importing again changes nothing.

    Raises Malformed or InvalidInput for bad input (naming the line), Conflict when an id is taken by
    something else (a cube at another version, another tenant's cube, a session of another agent).
    """
    header, cubes, links, sessions = parse_export(body)
    created: dict[str, int] = defaultdict(int)
    unchanged: dict[str, int] = defaultdict(int)
    new_cubes = _new_cubes(conn, tenant, cubes)
    unchanged["cubes"] = len(cubes) - len(new_cubes)
    reembedded = _vectors(new_cubes, header, embedder)
    rows = [record.model_dump() | {"embedding": vector} for record, vector in new_cubes]
    if rows:
        try:
            store.insert_cubes(conn, tenant=tenant, cubes=rows)
        except psycopg.errors.UniqueViolation as exc:
            # The one unique rule a new id can break: one active core block per label and scope.
            raise Conflict(f"the import clashes with what is here: {exc.diag.message_detail or exc}",
                           details={"constraint": exc.diag.constraint_name}) from exc
        created["cubes"], created["versions"] = len(rows), sum(len(r["versions"]) for r in rows)
        vector_index.WATCH.note_writes(conn, tenant=tenant, rows=rows, threshold=settings.exact_scan_max_rows)
        search_text.refresh_search_text(conn, tenant=tenant, cube_ids=[r["id"] for r in rows])
        _consolidation_state(conn, tenant, rows, settings)
        _distillation_state(conn, tenant, rows, settings)
    known = {r.id for r in cubes} | set(_tenant_ids(conn, tenant, _referenced(links, sessions)))
    for link in links:
        _require(known, [link.source_id, link.target_id], f"link {link.id}")
        counter = created if store.insert_link(conn, tenant=tenant, link=link.model_dump()) else unchanged
        counter["links"] += 1
    _import_sessions(conn, tenant, sessions, known, created, unchanged)
    return ImportResult(created=dict(created), unchanged=dict(unchanged), reembedded=reembedded)


def _new_cubes(conn: psycopg.Connection, tenant: str,
               cubes: Sequence[CubeRecord]) -> list[tuple[CubeRecord, list[float] | None]]:
    """Return the cubes not in the tenant yet (with their vectors); raises Conflict for a duplicate id in the
    input, or an id held by another tenant or at another version here."""
    seen: set[UUID] = set()
    for record in cubes:
        if record.id in seen:
            raise InvalidInput(f"memory {record.id} appears twice in the import", details={"id": str(record.id)})
        seen.add(record.id)
    existing = store.find_cubes(conn, [r.id for r in cubes])
    new = []
    for record in cubes:
        found = existing.get(record.id)
        if found is None:
            new.append((record, record.embedding))
        elif found["tenant"] != tenant:
            raise Conflict(f"memory id {record.id} is already in use in this deployment (by another tenant); "
                           "an import keeps ids, so it cannot go into a second tenant of the same deployment",
                           details={"id": str(record.id)})
        elif found["version"] != record.version:
            raise Conflict(f"memory {record.id} is here at version {found['version']}, the import has version "
                           f"{record.version}; nothing was imported",
                           details={"id": str(record.id), "current_version": found["version"],
                                    "imported_version": record.version})
    return new


def _vectors(new_cubes: list[tuple[CubeRecord, list[float] | None]], header: ExportHeader,
             embedder: Embedder) -> int:
    """Keep the vectors when the export's embedder is ours, else embed again the cubes that had one; return how
    many were embedded. Raises InvalidInput for a vector of the wrong size."""
    same = header.embedder is not None and (header.embedder.model, header.embedder.dim) == (embedder.name,
                                                                                           embedder.dim)
    if same:
        for record, vector in new_cubes:
            if vector is not None and len(vector) != embedder.dim:
                raise InvalidInput(f"memory {record.id} has a vector of {len(vector)} dimensions; the export's "
                                   f"embedder has {embedder.dim}", details={"id": str(record.id)})
        return 0
    todo = [i for i, (_, vector) in enumerate(new_cubes) if vector is not None]
    vectors = embedder.embed([embedding_text(new_cubes[i][0].model_dump()) for i in todo]) if todo else []
    for i, vector in zip(todo, vectors):
        new_cubes[i] = (new_cubes[i][0], vector)
    return len(todo)


def _consolidation_state(conn: psycopg.Connection, tenant: str, rows: list[dict[str, Any]],
                         settings: Settings) -> None:
    """Episodes consolidation had taken in stay taken in; the others count toward their scope's next run."""
    done: dict[tuple[str, str | None], list[UUID]] = defaultdict(list)
    for row in rows:
        if row["kind"] == "episodic" and row["consolidated"]:
            done[(row["agent_id"], row["user_id"])].append(row["id"])
    for scope, ids in sorted(done.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        store.mark_consolidated(conn, tenant=tenant, scope=scope, episode_ids=ids)
    pending = [row for row in rows if row["kind"] == "episodic" and not row["consolidated"]]
    if pending:
        note_episodes(conn, tenant=tenant, rows=pending, settings=settings)


def _distillation_state(conn: psycopg.Connection, tenant: str, rows: list[dict[str, Any]],
                        settings: Settings) -> None:
    """Trajectories keep their distillation; those not distilled yet count toward their scope's next one."""
    for row in rows:
        state = row["trajectory"]
        if state is None:
            continue
        store.insert_trajectory(conn, tenant=tenant, cube=row, created_at=state["created_at"],
                                distilled_at=state["distilled_at"])
        if state["distilled_at"] is None:
            note_trajectory(conn, ScopeKey(tenant, row["agent_id"], row["user_id"]), settings=settings)


def _referenced(links: Sequence[LinkRecord], sessions: Sequence[SessionRecord]) -> list[UUID]:
    ids = [i for link in links for i in (link.source_id, link.target_id)]
    return ids + [turn.cube_id for session in sessions for turn in session.turns]


def _tenant_ids(conn: psycopg.Connection, tenant: str, ids: Sequence[UUID]) -> list[UUID]:
    return [i for i, row in store.find_cubes(conn, list(set(ids))).items() if row["tenant"] == tenant]


def _require(known: set[UUID], ids: Sequence[UUID], what: str) -> None:
    missing = [str(i) for i in ids if i not in known]
    if missing:
        raise InvalidInput(f"{what} refers to memory {missing[0]}, which is neither in the import nor in this "
                           "tenant", details={"missing": missing})


def _import_sessions(conn: psycopg.Connection, tenant: str, sessions: Sequence[SessionRecord], known: set[UUID],
                     created: dict[str, int], unchanged: dict[str, int]) -> None:
    ids = [s.session_id for s in sessions]
    owners = store.find_sessions(conn, tenant=tenant, session_ids=ids)
    turns = store.find_turns(conn, tenant=tenant, session_ids=ids)
    for session in sessions:
        owner = owners.get(session.session_id)
        if owner is not None and (owner["agent_id"], owner["user_id"]) != (session.agent_id, session.user_id):
            raise Conflict(f"session {session.session_id} belongs here to agent {owner['agent_id']!r} and user "
                           f"{owner['user_id']!r}, not to those of the import",
                           details={"session_id": session.session_id})
        _require(known, [t.cube_id for t in session.turns], f"session {session.session_id}")
        record = session.model_dump()
        counter = created if store.insert_session(conn, tenant=tenant, session=record) else unchanged
        counter["sessions"] += 1
        for turn in record["turns"]:
            there = turns.get((session.session_id, turn["turn"]))
            if there is not None and there != turn["cube_id"]:
                raise Conflict(f"turn {turn['turn']} of session {session.session_id} is another memory here",
                               details={"session_id": session.session_id, "turn": turn["turn"]})
            counter = created if store.insert_turn(conn, tenant=tenant, session_id=session.session_id,
                                                   turn=turn) else unchanged
            counter["turns"] += 1
