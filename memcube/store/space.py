"""SQL for `embedding_space` and the vectors of `memcubes` as a whole. Functions never commit."""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

import psycopg

from memcube.store.cubes import to_vector

SQL_GET = "SELECT model, dim FROM embedding_space"
SQL_SET = (
    "INSERT INTO embedding_space (model, dim) VALUES (%s, %s) "
    "ON CONFLICT (singleton) DO UPDATE SET model = EXCLUDED.model, dim = EXCLUDED.dim, updated_at = now()"
)
SQL_ENSURE_INDEX = "SELECT memcube_ensure_vector_index(%s) AS built"
SQL_LOCK = "SELECT pg_advisory_xact_lock(7402311978)"
SQL_CLEAR = "UPDATE memcubes SET embedding = NULL WHERE embedding IS NOT NULL"
SQL_TODO = (
    "SELECT id, content, kind, artifact FROM memcubes WHERE embedding IS NULL AND status <> 'forgotten' "
    "ORDER BY id LIMIT %s"
)
SQL_SET_VECTOR = "UPDATE memcubes SET embedding = %s WHERE id = %s"


def lock_space(conn: psycopg.Connection) -> None:
    """Take the transaction-level lock that serializes changes of the embedding space."""
    conn.execute(SQL_LOCK)


def find_space(conn: psycopg.Connection) -> dict[str, Any] | None:
    """Return the recorded embedder {model, dim}, or None on a new database."""
    return conn.execute(SQL_GET).fetchone()


def set_space(conn: psycopg.Connection, *, model: str, dim: int) -> None:
    """Record the embedder the stored vectors come from."""
    conn.execute(SQL_SET, (model, dim))


def ensure_vector_index(conn: psycopg.Connection, dim: int | None) -> bool:
    """(Re)build the HNSW index for `dim` dimensions (None drops it); return whether anything was built."""
    return bool(conn.execute(SQL_ENSURE_INDEX, (dim,)).fetchone()["built"])


def clear_vectors(conn: psycopg.Connection) -> None:
    """Remove every stored vector."""
    conn.execute(SQL_CLEAR)


def list_unembedded(conn: psycopg.Connection, *, limit: int) -> list[dict[str, Any]]:
    """Return up to `limit` cubes without a vector that should have one (id, content, kind, artifact)."""
    return conn.execute(SQL_TODO, (limit,)).fetchall()


def set_vectors(conn: psycopg.Connection, vectors: Sequence[tuple[UUID, Sequence[float]]]) -> None:
    """Store a vector for each (cube id, vector)."""
    with conn.cursor() as cur:
        cur.executemany(SQL_SET_VECTOR, [(to_vector(v), cube_id) for cube_id, v in vectors])
