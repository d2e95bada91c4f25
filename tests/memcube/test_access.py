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


def test_a_flush_takes_its_row_locks_in_id_order(runtime, embedder, settings):
    """A change that locks several cubes locks them in id order (lock_cubes); a flush that locked the higher id
    first and then waited for the lower would deadlock with it."""
    import threading

    from memcube.store import cubes as cube_store

    with runtime.pool.connection() as conn:
        rows = cube.create_cubes(conn, tenant="access-t", actor="x", embedder=embedder, settings=settings,
                                 items=[MemCubeCreate(agent_id="a", content=f"locked {n}") for n in range(2)])
    low, high = sorted(row["id"] for row in rows)
    now = rows[0]["created_at"]
    outcome: dict[str, object] = {}
    with runtime.pool.connection() as change:
        cube_store.lock_cubes(change, tenant="access-t", cube_ids=[low])

        def flush() -> None:
            try:
                with runtime.pool.connection() as conn:
                    # The higher id first, as a Counter may well hold them.
                    outcome["rows"] = cube_store.record_access(conn, {high: (1, now), low: (1, now)})
            except Exception as exc:  # noqa: BLE001 - the test reports what the flush met
                outcome["error"] = exc

        flusher = threading.Thread(target=flush)
        flusher.start()
        time.sleep(0.5)  # the flush is now waiting for `low`, and must not be holding `high`
        change.execute("SET LOCAL lock_timeout = '3s'")
        cube_store.lock_cubes(change, tenant="access-t", cube_ids=[low, high])
    flusher.join(10)
    assert "error" not in outcome and outcome["rows"] == 2
