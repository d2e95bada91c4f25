"""The embedding space: which embedder made the stored vectors, checked at start, changed by re-embedding."""

from __future__ import annotations

import logging
from typing import Callable

import psycopg
import psycopg_pool

from memcube.cube import embedding_text
from memcube.embedder import Embedder
from memcube.errors import ConfigError
from memcube.store.cubes import to_vector

log = logging.getLogger(__name__)

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


# The settings that give each family of embedding space (its name's prefix).
_CONFIGURATIONS = {
    "local": "MEMCUBE_EMBEDDER=torch, or onnx with MEMCUBE_ONNX_PRECISION=fp32",
    "onnx-int8": "MEMCUBE_EMBEDDER=onnx with MEMCUBE_ONNX_PRECISION=int8",
    "hash": "MEMCUBE_EMBEDDER=hash and MEMCUBE_EMBED_DIM",
    "openai": "MEMCUBE_EMBEDDER=openai and MEMCUBE_EMBED_MODEL",
}


def configuration_of(space: str) -> str:
    """Return the settings that make an embedder of the named space."""
    family = space.split(":", 1)[0]
    return _CONFIGURATIONS.get(family, "MEMCUBE_EMBEDDER") + ", and MEMCUBE_EMBED_MODEL if it is not the default"


def ensure_space(conn: psycopg.Connection, embedder: Embedder) -> None:
    """Record the embedder on a new database, or check that it matches the recorded one.

    Raises ConfigError naming both embedders and the command that re-embeds.
    """
    conn.execute(SQL_LOCK)
    row = conn.execute(SQL_GET).fetchone()
    if row is None:
        conn.execute(SQL_SET, (embedder.name, embedder.dim))
    elif (row["model"], row["dim"]) != (embedder.name, embedder.dim):
        raise ConfigError(
            f"the database holds vectors from {row['model']} ({row['dim']} dimensions) but the configured "
            f"embedder is {embedder.name} ({embedder.dim} dimensions). Either configure the embedder that made "
            f"them ({configuration_of(row['model'])}) or run `memcube reembed` to re-embed every memory.",
            details={"stored": dict(row), "configured": {"model": embedder.name, "dim": embedder.dim}})
    if conn.execute(SQL_ENSURE_INDEX, (embedder.dim,)).fetchone()["built"]:
        log.info("built the HNSW index for %d dimensions", embedder.dim)


def reembed(pool: psycopg_pool.ConnectionPool, embedder: Embedder, *, batch_size: int = 256,
            progress: Callable[[int], None] | None = None) -> int:
    """Re-embed every memory with `embedder` and make it the recorded space; return how many were embedded.

    Safe to interrupt and run again: it resumes with the memories that have no vector yet.
    """
    with pool.connection() as conn:
        conn.execute(SQL_LOCK)
        row = conn.execute(SQL_GET).fetchone()
        if row is None or (row["model"], row["dim"]) != (embedder.name, embedder.dim):
            conn.execute(SQL_ENSURE_INDEX, (None,))
            conn.execute(SQL_CLEAR)
            conn.execute(SQL_SET, (embedder.name, embedder.dim))
    done = 0
    while True:
        with pool.connection() as conn:
            rows = conn.execute(SQL_TODO, (batch_size,)).fetchall()
            if not rows:
                break
            vectors = embedder.embed([embedding_text(r) for r in rows])
            with conn.cursor() as cur:
                cur.executemany(SQL_SET_VECTOR, [(to_vector(v), r["id"]) for v, r in zip(vectors, rows)])
        done += len(rows)
        if progress:
            progress(done)
    with pool.connection() as conn:
        conn.execute(SQL_ENSURE_INDEX, (embedder.dim,))
    return done
