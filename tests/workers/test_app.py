"""The Celery app's wiring: broker URL, task options, beat schedule, and the publisher the relay uses."""

from urllib.parse import quote

import pytest

from memcube.config import Settings
from memcube.errors import ConfigError, Unavailable
from workers.app import beat_schedule, create_celery, publisher


def test_the_app_takes_the_broker_from_the_settings_and_acknowledges_late():
    app = create_celery(Settings(redis_url="unix:///run/redis.sock", worker_queue="q1"))
    assert app.conf.broker_url == "redis+socket:///run/redis.sock"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.task_default_queue == "q1" and app.conf.worker_prefetch_multiplier == 1
    separate = create_celery(Settings(redis_url="redis://cache:6379/0", broker_url="redis://broker:6379/1"))
    assert separate.conf.broker_url == "redis://broker:6379/1"
    with pytest.raises(ConfigError, match="REDIS_URL"):
        create_celery(Settings(redis_url=None, broker_url=None))


def test_the_beat_schedule_follows_the_settings():
    schedule = beat_schedule(Settings(scan_interval_seconds=7, consolidate_every_seconds=0, distill_every_seconds=0,
                                      page_every_seconds=60))
    assert {name: (entry["task"], entry["schedule"]) for name, entry in schedule.items()} == \
        {"scan": ("memcube.scan", 7), "index": ("memcube.index", 7), "page": ("memcube.page", 60)}
    assert "consolidate-pending" in beat_schedule(Settings())
    assert beat_schedule(Settings(distill_every_seconds=90))["distill-pending"]["kwargs"] == {"distill_schedule": True}


def test_publishing_to_a_broker_that_is_down_raises_unavailable(tmp_path):
    app = create_celery(Settings(redis_url="unix://" + quote(str(tmp_path / "nothing.sock"))))
    with pytest.raises(Unavailable, match="memcube.scan"):
        publisher(app, "memcube")("memcube.scan", {})
