"""The access recorder writes counts in batches and leaves an idle process asleep."""

import time

from memcube import cube
from memcube.access import AccessRecorder
from memcube.models import MemCubeCreate


def test_an_idle_recorder_never_wakes_and_a_recorded_access_is_written(runtime, embedder, settings):
    with runtime.pool.connection() as conn:
        [row] = cube.create_cubes(conn, tenant="access-t", actor="x", embedder=embedder, settings=settings,
                                  items=[MemCubeCreate(agent_id="a", content="counted")])
    recorder = AccessRecorder(runtime.pool, interval=0.05)
    rounds = []
    real_flush = recorder.flush
    recorder.flush = lambda: (rounds.append(time.monotonic()), real_flush())[1]  # type: ignore[method-assign]
    recorder.start()
    try:
        time.sleep(0.5)
        assert rounds == [], "an idle recorder flushed (it should sleep until something is recorded)"
        recorder.record([row["id"]])
        deadline = time.monotonic() + 5
        while not rounds and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(rounds) == 1
        time.sleep(0.3)
        assert len(rounds) == 1, "the recorder went on waking after its counts were written"
    finally:
        recorder.stop()
    with runtime.pool.connection() as conn:
        count = conn.execute("SELECT access_count FROM memcubes WHERE id = %s", (row["id"],)).fetchone()
    assert count["access_count"] == 1
