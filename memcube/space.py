"""The embedding space: which embedder made the stored vectors, checked at start, changed by re-embedding."""

from __future__ import annotations

import logging
from typing import Callable

import psycopg
import psycopg_pool

from memcube.cube import embedding_text
from memcube.embedder import Embedder
from memcube.errors import ConfigError
from memcube.store import space as store

log = logging.getLogger(__name__)


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
    store.lock_space(conn)
    row = store.find_space(conn)
    if row is None:
        store.set_space(conn, model=embedder.name, dim=embedder.dim)
    elif (row["model"], row["dim"]) != (embedder.name, embedder.dim):
        raise ConfigError(
            f"the database holds vectors from {row['model']} ({row['dim']} dimensions) but the configured "
            f"embedder is {embedder.name} ({embedder.dim} dimensions). Either configure the embedder that made "
            f"them ({configuration_of(row['model'])}) or run `memcube reembed` to re-embed every memory.",
            details={"stored": dict(row), "configured": {"model": embedder.name, "dim": embedder.dim}})
    if store.ensure_vector_index(conn, embedder.dim):
        log.info("built the HNSW index for %d dimensions", embedder.dim)


def reembed(pool: psycopg_pool.ConnectionPool, embedder: Embedder, *, batch_size: int = 256,
            progress: Callable[[int], None] | None = None) -> int:
    """Re-embed every memory with `embedder` and make it the recorded space; return how many were embedded.

    Safe to interrupt and run again: it resumes with the memories that have no vector yet.
    """
    with pool.connection() as conn:
        store.lock_space(conn)
        row = store.find_space(conn)
        if row is None or (row["model"], row["dim"]) != (embedder.name, embedder.dim):
            store.ensure_vector_index(conn, None)
            store.clear_vectors(conn)
            store.set_space(conn, model=embedder.name, dim=embedder.dim)
    done = 0
    while True:
        with pool.connection() as conn:
            rows = store.list_unembedded(conn, limit=batch_size)
            if not rows:
                break
            vectors = embedder.embed([embedding_text(r) for r in rows])
            store.set_vectors(conn, [(r["id"], v) for r, v in zip(rows, vectors)])
        done += len(rows)
        if progress:
            progress(done)
    with pool.connection() as conn:
        store.ensure_vector_index(conn, embedder.dim)
    return done
