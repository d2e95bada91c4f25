"""Readiness checks: the broker check pings MEMCUBE_BROKER_URL when it names another Redis."""

from types import SimpleNamespace
from urllib.parse import quote

from memcube.health import readiness
from memcube.runtime import open_runtime


def test_the_broker_check_pings_the_broker_not_the_cache_when_they_differ(runtime, settings, embedder, tmp_path):
    assert readiness(runtime)["broker"]["ok"] and runtime.broker is None
    dead = "unix://" + quote(str(tmp_path / "no-broker.sock"))
    separate = open_runtime(settings.model_copy(update={"broker_url": dead}), embedder=embedder)
    try:
        checks = readiness(separate)
        assert checks["database"]["ok"] and checks["redis"]["ok"]
        assert not checks["broker"]["ok"] and "no-broker.sock" in checks["broker"]["error"]
    finally:
        separate.close()
    same = SimpleNamespace(pool=runtime.pool, redis=runtime.redis, broker=None)
    assert readiness(same)["broker"]["ok"]
