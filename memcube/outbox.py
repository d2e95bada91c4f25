"""The outbox relay: publish committed outbox rows to the broker and mark them sent.

Work is requested by writing an outbox row in the transaction of the data that needs it, so a crash
between commit and publish, or a broker that is down at write time, loses nothing: the row stays unsent
until a relay has published it. A relay may publish a row twice (if it dies between publishing and
marking), so every task is idempotent. Several relays may run at once: rows are claimed with
FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import psycopg

from memcube.db import connect
from memcube.errors import Unavailable
from memcube.store import outbox as store

log = logging.getLogger(__name__)

# Publish one task with its keyword arguments; raise Unavailable when the broker cannot take it.
Publish = Callable[[str, dict[str, Any]], None]

BATCH = 100
# A row whose publish failed is tried again after 1, 2, 4, ... seconds, at most this long.
MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True)
class RelayResult:
    sent: int
    failed: int


def backoff_seconds(attempts: int) -> float:
    """Seconds to wait before publishing a row again after `attempts` tries."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 10))


def relay_once(conn: psycopg.Connection, publish: Publish, *, batch: int = BATCH) -> RelayResult:
    """Publish up to `batch` due rows in one transaction and mark them sent; at the first failure, leave the
    rest for the next round (the broker is probably down)."""
    sent: list[int] = []
    failed = 0
    with conn.transaction():
        for row in store.claim_messages(conn, limit=batch):
            try:
                publish(row["task"], row["payload"])
            except Unavailable as exc:
                store.mark_failed(conn, message_id=row["id"], error=exc.message,
                                  retry_in_seconds=backoff_seconds(row["attempts"]))
                failed = 1
                break
            sent.append(row["id"])
        if sent:
            store.mark_sent(conn, sent)
    return RelayResult(sent=len(sent), failed=failed)


class OutboxRelay:
    """A thread that relays as soon as an outbox row commits (LISTEN/NOTIFY), and every `poll_seconds`
    for rows that are due again or whose notification it missed while disconnected."""

    def __init__(self, database_url: str, publish: Publish, *, poll_seconds: float) -> None:
        self._url = database_url
        self._publish = publish
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True) as listener, connect(self._url, autocommit=True) as conn:
                    store.listen(listener)
                    self._loop(listener, conn)
            except psycopg.Error as exc:
                log.warning("outbox relay: database error (%s); reconnecting", exc)
                self._stop.wait(min(self._poll, 5.0))

    def _loop(self, listener: psycopg.Connection, conn: psycopg.Connection) -> None:
        while not self._stop.is_set():
            result = relay_once(conn, self._publish)
            if result.sent:
                log.info("outbox relay: published %d task(s)", result.sent)
            if result.sent == BATCH:
                continue
            for _ in listener.notifies(timeout=self._poll, stop_after=1):
                pass
