"""The embedding space: recorded on first start, a mismatch stops start-up clearly, `reembed` moves to a new one."""


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
