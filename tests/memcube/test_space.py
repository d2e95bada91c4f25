"""The embedding space: recorded on first start, a mismatch stops start-up clearly, `reembed` moves to a new one."""


import numpy as np
import pytest

from memcube import cube
from memcube.config import Settings
from memcube.db import connect, open_pool
from memcube.embedder import HashEmbedder
from memcube.errors import ConfigError
from memcube.migrate import apply_migrations
from memcube.models import MemCubeCreate, SearchRequest
from memcube.search import SearchStats, search
from memcube.space import ensure_space, reembed


@pytest.fixture()
def scratch(scratch_url):
    with connect(scratch_url, autocommit=True) as c:
        apply_migrations(c)
    pool = open_pool(Settings(db_pool_min=1, db_pool_max=2), scratch_url)
    yield pool
    pool.close()


def index_definition(conn):
    row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memcubes_embedding_hnsw'").fetchone()
    return row and row["indexdef"]


def test_space_is_recorded_then_checked_then_moved_by_reembed(scratch):
    old, new = HashEmbedder(64), HashEmbedder(32)
    settings = Settings(embedder="hash")
    with scratch.connection() as c:
        ensure_space(c, old)
        assert "vector(64)" in index_definition(c)
        cube.create_cubes(c, tenant="t", actor="x", embedder=old, settings=settings,
                          items=[MemCubeCreate(agent_id="a", content=f"note number {i}") for i in range(7)])
        forgotten = cube.create_cubes(c, tenant="t", actor="x", embedder=old, settings=settings,
                                      items=[MemCubeCreate(agent_id="a", content="gone")])[0]
        cube.forget_cube(c, tenant="t", actor="x", cube_id=forgotten["id"], erase=True)
    with scratch.connection() as c:
        ensure_space(c, old)  # same embedder again: fine
        with pytest.raises(ConfigError) as info:
            ensure_space(c, new)
    message = info.value.message
    assert "hash:64 (64 dimensions)" in message and "hash:32 (32 dimensions)" in message
    assert "memcube reembed" in message

    assert reembed(scratch, new, batch_size=3) == 7
    with scratch.connection() as c:
        ensure_space(c, new)
        assert "vector(32)" in index_definition(c)
        dims = c.execute("SELECT DISTINCT vector_dims(embedding) AS d FROM memcubes WHERE embedding IS NOT NULL")
        assert [r["d"] for r in dims.fetchall()] == [32]
        hits = search(c, tenant="t", request=SearchRequest(agent_id="a", query="note number 3", k=3), embedder=new,
                      settings=settings, stats=SearchStats(0)).hits
        assert hits[0].content == "note number 3"
    assert reembed(scratch, new) == 0  # nothing left to do: resumable and idempotent


def test_moving_from_torch_vectors_to_the_onnx_default_is_caught_then_reembedded(scratch, embedder):
    """A database whose vectors came from the torch embedder (the default before ONNX) refuses the ONNX int8
    default with a message naming both spaces and how to get each, and `reembed` moves it across."""
    from dataclasses import dataclass

    from memcube.embedder import BUNDLED_MODEL_NAME, TorchEmbedder, bundled_model_path

    @dataclass
    class Recorded:  # what a database written by the torch embedder records: its name and size
        name: str = f"local:{BUNDLED_MODEL_NAME}"
        dim: int = 384

    torch_space = Recorded()
    torch_embedder = TorchEmbedder(bundled_model_path(), BUNDLED_MODEL_NAME, threads=1, batch_size=64)
    assert (torch_embedder.name, torch_embedder.dim) == (torch_space.name, torch_space.dim)
    settings = Settings(embedder="onnx")
    texts = ["The spare wheel is under the boot floor", "Priya prefers email over phone calls",
             "The quarterly report is due on Friday"]
    with scratch.connection() as c:
        ensure_space(c, torch_space)
        cube.create_cubes(c, tenant="t", actor="x", embedder=torch_embedder, settings=settings,
                          items=[MemCubeCreate(agent_id="a", content=t) for t in texts])
    with scratch.connection() as c, pytest.raises(ConfigError) as info:
        ensure_space(c, embedder)
    message = info.value.message
    assert f"local:{BUNDLED_MODEL_NAME} (384 dimensions)" in message
    assert f"onnx-int8:{BUNDLED_MODEL_NAME} (384 dimensions)" in message
    assert "MEMCUBE_EMBEDDER=torch" in message and "memcube reembed" in message

    assert reembed(scratch, embedder) == len(texts)
    with scratch.connection() as c:
        ensure_space(c, embedder)
        stored = c.execute("SELECT content, embedding FROM memcubes ORDER BY content").fetchall()
        for row in stored:
            # int8 quantizes each batch's activations with one scale, so a text embedded among others differs
            # from itself alone (cosine 0.99 here): the same space, not the same bits.
            assert float(row["embedding"].to_numpy() @ np.asarray(embedder.embed([row["content"]])[0])) > 0.98
        hits = search(c, tenant="t", request=SearchRequest(agent_id="a", query="how to contact Priya?", k=1),
                      embedder=embedder, settings=settings, stats=SearchStats(0)).hits
        assert hits[0].content == texts[1]
