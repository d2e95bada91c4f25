"""Which scopes the HNSW index holds: only those large enough for search to use it.

A scope (tenant, agent) of up to `MEMCUBE_EXACT_SCAN_MAX_ROWS` memories is searched by exact distances, so an
index entry for its rows would be paid on every insert (most of an insert's cost) and never read. A write
that takes a scope past the threshold marks it `filling` in its own transaction: from then on its new rows
enter the index. The worker's beat then sweeps the scope's older rows in (`fill_pending`) and marks it `ready`;
only then does search choose the index for it. Until then the scope is searched exactly: slower for a while,
never incomplete.

Writers notice growth from a per-process estimate (the last count plus the rows this process wrote since),
recounted once it passes the threshold or grows stale, so a write costs no count in the common case.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

import psycopg
import psycopg_pool

from memcube.store import cubes as cube_store
from memcube.store import vector_index as store

log = logging.getLogger(__name__)

# Rows one sweep transaction puts into the index.
CHUNK_ROWS = 500
# Scopes one beat run fills at most (the rest wait for the next run).
SCOPES_PER_RUN = 20
# How long a scope's size estimate is trusted before a write recounts it (other processes write too).
ESTIMATE_TTL_SECONDS = 300.0
# Entries the estimate cache holds before it starts again.
CACHE_ENTRIES = 100_000


class GrowthWatch:
    """Per process: notices, at the write that does it, when a scope outgrows the exact plan."""

    def __init__(self, ttl_seconds: float = ESTIMATE_TTL_SECONDS) -> None:
        self._ttl = ttl_seconds
        # (database, tenant, agent) -> (rows estimated, when counted); absent: never counted here.
        self._estimates: dict[tuple[str, str, str], tuple[int, float]] = {}
        # Scopes seen marked, and when: looked at again after the ttl, since the write that marked one may have
        # rolled back (then the next write marks it).
        self._indexed: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def note_writes(self, conn: psycopg.Connection, *, tenant: str, rows: Iterable[dict], threshold: int) -> None:
        """After inserting `rows` in the caller's transaction: mark each scope they took past `threshold` as
        filling, in that same transaction (so the mark commits or rolls back with the rows)."""
        added: dict[str, int] = {}
        for row in rows:
            added[row["agent_id"]] = added.get(row["agent_id"], 0) + 1
        database = conn.info.dbname
        for agent_id, n in added.items():
            key = (database, tenant, agent_id)
            now = time.monotonic()
            with self._lock:
                marked_at = self._indexed.get(key)
                entry = self._estimates.get(key)
            if marked_at is not None:
                if now - marked_at < self._ttl:
                    continue
                if store.state(conn, tenant=tenant, agent_id=agent_id) is not None:
                    with self._lock:
                        self._indexed[key] = now
                    continue
                with self._lock:
                    self._indexed.pop(key, None)
                entry = None
            if entry is not None and now - entry[1] < self._ttl and entry[0] + n <= threshold:
                with self._lock:
                    self._estimates[key] = (entry[0] + n, entry[1])
                continue
            size = cube_store.scope_size(conn, tenant=tenant, agent_id=agent_id, cap=threshold + 1)
            if size > threshold:
                if store.mark_filling(conn, tenant=tenant, agent_id=agent_id):
                    log.info("scope %s/%s holds over %d memories: its vectors enter the HNSW index",
                             tenant, agent_id, threshold)
                with self._lock:
                    self._indexed[key] = now
                    self._estimates.pop(key, None)
                continue
            with self._lock:
                if len(self._estimates) > CACHE_ENTRIES:
                    self._estimates.clear()
                self._estimates[key] = (size, now)


# One watch per process: every write path shares it.
WATCH = GrowthWatch()


def fill_scope(conn: psycopg.Connection, *, tenant: str, agent_id: str, chunk: int = CHUNK_ROWS) -> int:
    """Sweep a filling scope's rows into the index and mark it ready, committing each chunk on `conn` (which must
    not be in a transaction of the caller's); return how many rows entered. A scope another filler holds is
    left to it (0)."""
    if not store.try_filler(conn, tenant=tenant, agent_id=agent_id):
        conn.commit()
        return 0
    try:
        conn.commit()
        # Writers that began before the scope turned filling may still insert rows outside the index: wait for
        # them to end. Any writer after this reads the new state (the trigger takes the lock before it looks).
        store.wait_for_writers(conn, tenant=tenant, agent_id=agent_id)
        conn.commit()
        entered, after = 0, None
        while True:
            n, after = store.index_chunk(conn, tenant=tenant, agent_id=agent_id, after=after, limit=chunk)
            conn.commit()
            entered += n
            if after is None:
                break
        # The keyset walk passed every row that existed when it began, and rows written since are flagged by
        # the trigger; a row moved in by a change is flagged by it too. Check before search may rely on it.
        missing = store.left_out(conn, tenant=tenant, agent_id=agent_id)
        if missing:
            conn.rollback()
            log.warning("scope %s/%s: %d row(s) still outside the index after a sweep; next run sweeps again",
                        tenant, agent_id, missing)
            return entered
        store.mark_ready(conn, tenant=tenant, agent_id=agent_id)
        conn.commit()
        return entered
    except BaseException:
        conn.rollback()
        raise
    finally:
        store.release_filler(conn, tenant=tenant, agent_id=agent_id)
        conn.commit()


def fill_pending(pool: psycopg_pool.ConnectionPool, *, limit: int = SCOPES_PER_RUN) -> dict[str, int]:
    """Fill the scopes waiting for the index (the beat runs this); return how many scopes became ready and how
    many rows entered the index."""
    with pool.connection() as conn:
        scopes = store.filling(conn, limit=limit)
    ready = rows = 0
    for tenant, agent_id in scopes:
        with pool.connection() as conn:
            started = time.monotonic()
            rows += fill_scope(conn, tenant=tenant, agent_id=agent_id)
            if store.state(conn, tenant=tenant, agent_id=agent_id) == "ready":
                ready += 1
                log.info("scope %s/%s is in the HNSW index (%.1f s)", tenant, agent_id, time.monotonic() - started)
            conn.commit()
    return {"scopes": len(scopes), "ready": ready, "rows": rows}


def index_large_scopes(conn: psycopg.Connection, *, threshold: int) -> list[tuple[str, str]]:
    """Mark every scope of more than `threshold` memories that the index does not hold yet as filling (after an
    upgrade, or a lower threshold); return them. Counts every scope: an operator's command, not a hot path."""
    out = store.large_unindexed(conn, threshold=threshold)
    for tenant, agent_id in out:
        store.mark_filling(conn, tenant=tenant, agent_id=agent_id)
    return out
