"""Busy looks and transient retries of a job are counted apart, each against its own bound."""

from __future__ import annotations

from types import SimpleNamespace
import uuid
from typing import Any

import psycopg
import pytest

from memcube.jobs import JobBusy
from workers import tasks


JOB = str(uuid.uuid4())


class Retry(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("retry")
        self.kwargs = kwargs


class FakeTask:
    """What _run_job uses of a bound Celery task: its request id and retry()."""

    def __init__(self, retries: int) -> None:
        self.request = SimpleNamespace(id="task-1", retries=retries)

    def retry(self, *, exc: Exception, countdown: float, kwargs: dict[str, Any]) -> Retry:
        return Retry(kwargs)


@pytest.fixture()
def process(monkeypatch):
    runtime = SimpleNamespace(pool=None, embedder=None, settings=None)
    monkeypatch.setitem(tasks._process, "runtime", runtime)
    monkeypatch.setitem(tasks._process, "llm", None)


def failing(exc: Exception):  # noqa: ANN201
    def run(*args: Any, **kwargs: Any) -> Any:
        raise exc
    return run


def test_a_job_that_waited_on_a_busy_lease_still_gets_its_transient_retries(process):
    # Celery's own counter says 40 (all of them busy looks); the database blip is only the first.
    with pytest.raises(Retry) as retry:
        tasks._run_job(FakeTask(retries=40), failing(psycopg.OperationalError("down")), JOB, busy=40)
    assert retry.value.kwargs == {"job_id": JOB, "transient": 1, "busy": 40}


def test_transient_errors_give_up_after_their_own_bound(process):
    with pytest.raises(psycopg.OperationalError):
        tasks._run_job(FakeTask(retries=5), failing(psycopg.OperationalError("down")), JOB,
                       transient=tasks.MAX_RETRIES)


def test_busy_looks_are_bounded_apart(process):
    with pytest.raises(Retry) as retry:
        tasks._run_job(FakeTask(retries=7), failing(JobBusy(uuid.UUID(JOB), 1.0)), JOB, transient=3, busy=4)
    assert retry.value.kwargs == {"job_id": JOB, "transient": 3, "busy": 5}
    with pytest.raises(JobBusy):
        tasks._run_job(FakeTask(retries=100), failing(JobBusy(uuid.UUID(JOB), 1.0)), JOB, busy=tasks.MAX_BUSY_RETRIES)
