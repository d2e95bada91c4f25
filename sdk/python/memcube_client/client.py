"""`MemCube` (blocking) and `AsyncMemCube`: the same resources and answers, over httpx."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx

from memcube_client._endpoint import Async, Sync
from memcube_client._transport import AsyncTransport, RetryPolicy, SyncTransport
from memcube_client.errors import APITimeoutError
from memcube_client.models import ImportResult, Job
from memcube_client.resources import (Agents, Audit, Core, Jobs, Keys, Lessons, Memories, Memory, Sessions, Trajectories,
                                      split_export)

__version__ = "0.1.0"
DEFAULT_URL = "http://127.0.0.1:8000"
# One import request carries at most this much of an export (the service refuses bodies over
# MEMCUBE_MAX_BODY_BYTES, 64 MiB by default).
IMPORT_BATCH_BYTES = 8 * 1024 * 1024


def _config(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    base_url = base_url or os.environ.get("MEMCUBE_URL") or DEFAULT_URL
    api_key = api_key or os.environ.get("MEMCUBE_API_KEY")
    if not api_key:
        raise ValueError("no API key: pass api_key= or set MEMCUBE_API_KEY")
    return base_url.rstrip("/"), api_key


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": f"memcube-client/{__version__}"}


def _read_export(source: bytes | str | os.PathLike[str] | IO[bytes]) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    return source.read()


def _add(total: ImportResult | None, part: ImportResult) -> ImportResult:
    if total is None:
        return part
    created = {k: total.created.get(k, 0) + part.created.get(k, 0) for k in {*total.created, *part.created}}
    unchanged = {k: total.unchanged.get(k, 0) + part.unchanged.get(k, 0) for k in {*total.unchanged, *part.unchanged}}
    return ImportResult(created=created, unchanged=unchanged, reembedded=total.reembedded + part.reembedded)


class MemCube:
    """A blocking client of one MemCube service, authenticated with one key.

    `base_url` defaults to MEMCUBE_URL (else http://127.0.0.1:8000), `api_key` to MEMCUBE_API_KEY. Calls that
    fail to connect, or get a 429 or 503, are retried up to `max_retries` times with exponential backoff and
    jitter, or after the `Retry-After` the service asks for; errors raise a MemCubeError subclass.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 3, http_client: httpx.Client | None = None) -> None:
        base_url, api_key = _config(base_url, api_key)
        self._http = http_client or httpx.Client(base_url=base_url, timeout=timeout)
        self._http.headers.update(_headers(api_key))
        transport = SyncTransport(self._http, RetryPolicy(max_retries=max_retries))
        self.memories: Memories[Sync] = Memories(transport)
        self.sessions: Sessions[Sync] = Sessions(transport)
        self.core: Core[Sync] = Core(transport)
        self.agents: Agents[Sync] = Agents(transport)
        self.trajectories: Trajectories[Sync] = Trajectories(transport)
        self.lessons: Lessons[Sync] = Lessons(transport)
        self.jobs: Jobs[Sync] = Jobs(transport)
        self.keys: Keys[Sync] = Keys(transport)
        self.audit: Audit[Sync] = Audit(transport)
        memory: Memory[Sync] = Memory(transport)
        self.search, self.context, self.health, self.ready = memory.search, memory.context, memory.health, memory.ready
        self._memory = memory

    def export(self, sink: IO[bytes] | None = None, *, agent_id: str | None = None) -> bytes | None:
        """Export the tenant's memory (or one agent's) as NDJSON: into `sink`, or returned as bytes."""
        if sink is not None:
            self._memory.export(sink, agent_id=agent_id)
            return None
        buffer = io.BytesIO()
        self._memory.export(buffer, agent_id=agent_id)
        return buffer.getvalue()

    def import_(self, source: bytes | str | os.PathLike[str] | IO[bytes], *,
                batch_bytes: int = IMPORT_BATCH_BYTES) -> ImportResult:
        """Import an export (bytes, a path or a binary file) in batches, each all or nothing; importing it
        again changes nothing. Returns the counts added up."""
        total = None
        for batch in split_export(_read_export(source), batch_bytes):
            total = _add(total, self._memory.import_batch(batch))
        return total or ImportResult(created={}, unchanged={})

    def wait_for_job(self, job_id: UUID | str, *, timeout: float = 120.0, interval: float = 0.5) -> Job:
        """Poll a job until it has succeeded or failed; raises APITimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.jobs.get(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise APITimeoutError(f"job {job_id} still {job.state} after {timeout} s")
            time.sleep(interval)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MemCube:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncMemCube:
    """The asyncio twin of `MemCube`: the same resources, each call awaited; listings' `iter` are async
    iterators."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 3, http_client: httpx.AsyncClient | None = None) -> None:
        base_url, api_key = _config(base_url, api_key)
        self._http = http_client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._http.headers.update(_headers(api_key))
        transport = AsyncTransport(self._http, RetryPolicy(max_retries=max_retries))
        self.memories: Memories[Async] = Memories(transport)
        self.sessions: Sessions[Async] = Sessions(transport)
        self.core: Core[Async] = Core(transport)
        self.agents: Agents[Async] = Agents(transport)
        self.trajectories: Trajectories[Async] = Trajectories(transport)
        self.lessons: Lessons[Async] = Lessons(transport)
        self.jobs: Jobs[Async] = Jobs(transport)
        self.keys: Keys[Async] = Keys(transport)
        self.audit: Audit[Async] = Audit(transport)
        memory: Memory[Async] = Memory(transport)
        self.search, self.context, self.health, self.ready = memory.search, memory.context, memory.health, memory.ready
        self._memory = memory

    async def export(self, sink: IO[bytes] | None = None, *, agent_id: str | None = None) -> bytes | None:
        """Export the tenant's memory (or one agent's) as NDJSON: into `sink`, or returned as bytes."""
        if sink is not None:
            await self._memory.export(sink, agent_id=agent_id)
            return None
        buffer = io.BytesIO()
        await self._memory.export(buffer, agent_id=agent_id)
        return buffer.getvalue()

    async def import_(self, source: bytes | str | os.PathLike[str] | IO[bytes], *,
                      batch_bytes: int = IMPORT_BATCH_BYTES) -> ImportResult:
        """Import an export in batches, each all or nothing; importing it again changes nothing."""
        total = None
        for batch in split_export(_read_export(source), batch_bytes):
            total = _add(total, await self._memory.import_batch(batch))
        return total or ImportResult(created={}, unchanged={})

    async def wait_for_job(self, job_id: UUID | str, *, timeout: float = 120.0, interval: float = 0.5) -> Job:
        """Poll a job until it has succeeded or failed; raises APITimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.jobs.get(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise APITimeoutError(f"job {job_id} still {job.state} after {timeout} s")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemCube:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
