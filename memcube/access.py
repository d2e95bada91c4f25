"""Access recording off the request path: counts are buffered in memory and written in batches."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timezone
from typing import Iterable
from uuid import UUID

import psycopg
import psycopg_pool

from memcube.store import cubes as cube_store

log = logging.getLogger(__name__)


class AccessRecorder:
    """Collects cube accesses and adds them to `access_count` every `interval` seconds.

    A search pays one dict update; the database sees one UPDATE per interval. A hard
    crash loses at most one interval of counts (they only steer paging, never content).
    An idle process is not woken: the thread sleeps until something is recorded.
    """

    def __init__(self, pool: psycopg_pool.ConnectionPool, interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self._counts: Counter[UUID] = Counter()
        self._last: dict[UUID, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, cube_ids: Iterable[UUID]) -> None:
        """Count one access of each cube."""
        now = datetime.now(timezone.utc)
        with self._lock:
            for cube_id in cube_ids:
                self._counts[cube_id] += 1
                self._last[cube_id] = now
        self._pending.set()

    def flush(self) -> int:
        """Write the buffered counts now; return how many cubes were updated."""
        with self._lock:
            counts, last = self._counts, self._last
            self._counts, self._last = Counter(), {}
        if not counts:
            return 0
        try:
            with self._pool.connection() as conn:
                return cube_store.record_access(conn, {i: (n, last[i]) for i, n in counts.items()})
        except (psycopg.Error, psycopg_pool.PoolTimeout):
            log.warning("could not write %d access counts; keeping them for the next flush", len(counts))
            with self._lock:
                self._counts.update(counts)
                for cube_id, moment in last.items():
                    self._last.setdefault(cube_id, moment)
            self._pending.set()
            return 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="access-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and write what is left."""
        self._stop.set()
        self._pending.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._pending.wait()
            if self._stop.wait(self._interval):
                return
            # Cleared before the flush: what is recorded meanwhile sets it again for the next round.
            self._pending.clear()
            self.flush()
