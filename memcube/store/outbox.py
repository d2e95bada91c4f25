"""SQL for `outbox`: tasks to publish, written in the transaction of the data that needs them."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# Relays LISTEN on this channel; NOTIFY is transactional, so it wakes them only when the row is committed.
CHANNEL = "memcube_outbox"

SQL_INSERT = "INSERT INTO outbox (task, payload) VALUES (%s, %s) RETURNING id"
SQL_NOTIFY = "SELECT pg_notify('" + CHANNEL + "', '')"
SQL_LISTEN = "LISTEN " + CHANNEL
SQL_CLAIM = (
    "SELECT id, task, payload, attempts FROM outbox WHERE sent_at IS NULL AND available_at <= now() "
    "ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
)
SQL_MARK_SENT = "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY(%s)"
SQL_MARK_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = %s, "
    "available_at = now() + make_interval(secs => %s) WHERE id = %s"
)
SQL_PURGE = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => %s)"
SQL_HAS_UNSENT_FOR_JOBS = (
    "SELECT DISTINCT (payload->>'job_id')::uuid AS job_id FROM outbox "
    "WHERE sent_at IS NULL AND payload->>'job_id' = ANY(%s)"
)


def insert_message(conn: psycopg.Connection, *, task: str, payload: dict[str, Any]) -> int:
    """Add a task to publish once the transaction commits; return its outbox id."""
    row = conn.execute(SQL_INSERT, (task, Jsonb(payload))).fetchone()
    conn.execute(SQL_NOTIFY)
    return row["id"]


def listen(conn: psycopg.Connection) -> None:
    """Subscribe an autocommit connection to outbox notifications."""
    conn.execute(SQL_LISTEN)


def claim_messages(conn: psycopg.Connection, *, limit: int) -> list[dict[str, Any]]:
    """Lock up to `limit` unsent rows that are due, skipping rows another relay holds."""
    return conn.execute(SQL_CLAIM, (limit,)).fetchall()


def mark_sent(conn: psycopg.Connection, ids: list[int]) -> None:
    conn.execute(SQL_MARK_SENT, (ids,))


def mark_failed(conn: psycopg.Connection, *, message_id: int, error: str, retry_in_seconds: float) -> None:
    """Record a failed publish; the row is due again after `retry_in_seconds`."""
    conn.execute(SQL_MARK_FAILED, (error[:1000], retry_in_seconds, message_id))


def purge_sent(conn: psycopg.Connection, *, older_than_seconds: float) -> int:
    """Delete rows published longer ago than `older_than_seconds`; return how many."""
    return conn.execute(SQL_PURGE, (older_than_seconds,)).rowcount


def jobs_with_unsent_messages(conn: psycopg.Connection, job_ids: list[str]) -> set[str]:
    """Return which of these job ids already wait in the outbox."""
    return {str(row["job_id"]) for row in conn.execute(SQL_HAS_UNSENT_FOR_JOBS, (job_ids,)).fetchall()}
