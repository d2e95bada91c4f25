"""Ingest measurements: the API's batch create, the same rows inserted directly in SQL, and the diagnostics."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

import httpx
import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from bench.common import BenchEmbedder, Progress, Server
from memcube.db import connect
from memcube.models import MemCubeCreate
from memcube.space import ensure_space
from memcube.store.cubes import SQL_GET_MANY, SQL_INSERT_CUBE, SQL_SNAPSHOT

TENANT = "bench"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def occurred_at(i: int) -> datetime:
    return EPOCH + timedelta(minutes=i)


def api_item(i: int, text: str, agent_id: str, vector: np.ndarray | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"agent_id": agent_id, "kind": "episodic", "content": text, "metadata": {"n": i},
                            "occurred_at": occurred_at(i).isoformat()}
    if vector is not None:
        item["embedding"] = vector.tolist()
    return item


@dataclass
class IngestRun:
    rows: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    # Batches also embedded by the embedder alone, right before the API call that carries them.
    probe_rows: int = 0
    probe_embed_seconds: float = 0.0
    probe_api_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


def ingest_api(server: Server, token: str, texts: Sequence[str], agent_of: Callable[[int], str],
               embedder: BenchEmbedder, *, batch: int = 500, offset: int = 0,
               vectors: np.ndarray | None = None, clients: int = 1, probe_every: int = 0,
               label: str = "API ingest") -> IngestRun:
    """POST /v1/memories/batch with `batch` items a call, from `clients` keep-alive clients at once.

    With `probe_every` (one client only), every n-th batch is first embedded by the embedder alone, off the
    API's clock: the embedder's own throughput measured on the same texts, interleaved with the API calls so
    that a change of machine load hits both alike."""
    batches = [list(range(start, min(start + batch, len(texts)))) for start in range(0, len(texts), batch)]
    progress = Progress(label, len(texts))
    run = IngestRun()
    lock = threading.Lock()
    errors: list[str] = []

    def worker(mine: list[tuple[int, list[int]]]) -> None:
        with server.client(token) as http:
            for number, idx in mine:
                probe = clients == 1 and probe_every > 0 and number % probe_every == 0
                if probe:
                    t0 = time.perf_counter()
                    embedder.inner.embed([texts[i] for i in idx])
                    run.probe_embed_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                body = {"items": [api_item(offset + i, texts[i], agent_of(offset + i),
                                           None if vectors is None else vectors[i]) for i in idx]}
                try:
                    r = http.post("/v1/memories/batch", json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                took = time.perf_counter() - t0
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:300]}")
                    return
                with lock:
                    run.rows += len(idx)
                    if probe:
                        run.probe_rows += len(idx)
                        run.probe_api_seconds += took
                    progress(run.rows)

    embed_before = embedder.seconds
    started = time.perf_counter()
    numbered = list(enumerate(batches))
    threads = [threading.Thread(target=worker, args=(numbered[c::clients],)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # a timed join keeps Ctrl-C working
            t.join(0.5)
    run.seconds = time.perf_counter() - started - run.probe_embed_seconds
    if errors:
        raise RuntimeError(f"{label} failed: {errors[0]}")
    run.embed_seconds = embedder.seconds - embed_before
    return run


def raw_rows(texts: Sequence[str], vectors: np.ndarray, agent_of: Callable[[int], str],
             offset: int = 0) -> list[dict[str, Any]]:
    """The parameters memcube.store.cubes.insert_cubes sends for these cubes (every placeholder of its
    INSERT, from the same MemCubeCreate the API builds), prepared ahead of the clock."""
    names = _PLACEHOLDER.findall(SQL_INSERT_CUBE)
    provenance = Jsonb({"source": "api", "actor": "bench"})
    rows = []
    for i, text in enumerate(texts):
        item = MemCubeCreate(agent_id=agent_of(offset + i), kind="episodic", content=text,
                             metadata={"n": offset + i}, occurred_at=occurred_at(offset + i))
        row: dict[str, Any] = dict.fromkeys(names)
        row.update(item.model_dump(exclude={"embedding"}))
        row.update(id=uuid.uuid4(), tenant=TENANT, provenance=provenance, metadata=Jsonb(row["metadata"] or {}),
                   data=None, artifact=None, embedding=vectors[i], status="active")
        rows.append({name: row[name] for name in names})
    return rows


def ingest_raw(url: str, rows: list[dict[str, Any]], embedder: BenchEmbedder | None, *, batch: int = 500,
               label: str = "raw SQL ingest") -> IngestRun:
    """Insert rows with the service's own statements, one transaction a batch: INSERT (executemany),
    the version snapshot, the read-back the API answers with, commit. Each phase is timed.

    With an embedder, the embedding space is recorded first, which builds the HNSW index (as at API start);
    without one the table has no HNSW index."""
    run = IngestRun(phases={"insert": 0.0, "snapshot": 0.0, "read back": 0.0, "commit": 0.0})
    progress = Progress(label, len(rows))
    with connect(url) as conn:
        if embedder is not None:
            ensure_space(conn, embedder)
            conn.commit()
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            ids = [r["id"] for r in part]
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany(SQL_INSERT_CUBE, part)
                t1 = time.perf_counter()
                cur.execute(SQL_SNAPSHOT, (ids,))
            t2 = time.perf_counter()
            conn.execute(SQL_GET_MANY, (TENANT, ids)).fetchall()
            t3 = time.perf_counter()
            conn.commit()
            t4 = time.perf_counter()
            for name, dt in zip(run.phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                run.phases[name] += dt
            progress(start + len(part))
        run.seconds = time.perf_counter() - started
    run.rows = len(rows)
    return run


def vacuum_analyze(url: str) -> float:
    """VACUUM ANALYZE the cube tables (what autovacuum would do after a bulk load); return seconds."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE memcubes")
        conn.execute("VACUUM ANALYZE memcube_versions")
    return time.perf_counter() - started


def stored_vectors(url: str, n: int, tenant: str = TENANT) -> np.ndarray:
    """The vectors the API stored, by the cube's `metadata.n`: exactly what the embedder gave it."""
    out = np.zeros((n, 0), dtype=np.float32)
    with connect(url) as conn:
        rows = conn.execute("SELECT (metadata->>'n')::int AS n, embedding FROM memcubes WHERE tenant = %s "
                            "AND (metadata->>'n')::int < %s", (tenant, n)).fetchall()
    for row in rows:
        vector = row["embedding"]
        vector = np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)
        if out.shape[1] == 0:
            out = np.zeros((n, vector.shape[0]), dtype=np.float32)
        out[row["n"]] = vector
    if len(rows) != n:
        raise RuntimeError(f"expected {n} stored vectors, found {len(rows)}")
    return out
