"""How a call travels: one description of each request (`Call`), a retry policy as pure functions, and two
transports that send calls, one blocking (httpx.Client) and one async (httpx.AsyncClient). Everything but the
waiting and the socket is shared, so the two clients cannot drift apart."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Callable, Generic, TypeVar

import httpx

from memcube_client.errors import APIConnectionError, APITimeoutError, MemCubeError, error_from_response

T = TypeVar("T")

# Statuses that say "not now" without having done anything: rate limited, or a dependency down.
RETRY_STATUSES = frozenset({429, 503})
# Methods whose repetition changes nothing, so a request may be sent again after a broken answer.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Failures before the request reached the service: safe to send again whatever the method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after it may have: sent again only when the call is idempotent.
MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.WriteTimeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Where a streamed answer's body goes (an export), instead of being read into memory.
    sink: IO[bytes] | None = None
    idempotent: bool | None = None

    @property
    def retry_safe(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method in IDEMPOTENT_METHODS


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on connection errors, 429 and 503: exponential backoff with jitter, or the `Retry-After` asked."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A Retry-After longer than this is not waited for: the error is raised at once.
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (0-based): doubling, capped, with half of it jittered."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return ceiling / 2 + rand() * ceiling / 2

    def delay_for(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retrying, or None when this failure is not retried."""
        if attempt >= self.max_retries:
            return None
        if response is None:
            return self.backoff(attempt)
        if response.status_code not in RETRY_STATUSES:
            return None
        asked = retry_after(response)
        if asked is None:
            return self.backoff(attempt)
        return asked if asked <= self.max_retry_after else None


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Return the seconds a `Retry-After` header asks for (a number or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _request_kwargs(call: Call[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": {k: v for k, v in (call.params or {}).items() if v is not None},
                              "headers": call.headers}
    if call.json is not None:
        kwargs["json"] = call.json
    elif call.content is not None:
        kwargs["content"] = call.content
    return kwargs


def _connection_error(exc: httpx.TransportError, call: Call[Any]) -> MemCubeError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return cls(f"{call.method} {call.path}: {type(exc).__name__}: {exc}")


def _retryable(exc: httpx.TransportError, call: Call[Any]) -> bool:
    return isinstance(exc, NOT_SENT) or (call.retry_safe and isinstance(exc, MAYBE_SENT))


def _finish(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_from_response(response)
    return call.parse(response)


class SyncTransport:
    """Sends calls with httpx.Client, waiting between retries with time.sleep."""

    def __init__(self, http: httpx.Client, retry: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = http
        self.retry = retry
        self.sleep = sleep

    def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._once(call)
            except httpx.TransportError as exc:
                delay = self.retry.delay_for(attempt, None) if _retryable(exc, call) else None
                if delay is None:
                    raise _connection_error(exc, call) from exc
            else:
                delay = self.retry.delay_for(attempt, response)
                if delay is None:
                    return _finish(call, response)
            self.sleep(delay)
            attempt += 1

    def _once(self, call: Call[Any]) -> httpx.Response:
        if call.sink is None:
            return self.http.request(call.method, call.path, **_request_kwargs(call))
        with self.http.stream(call.method, call.path, **_request_kwargs(call)) as response:
            if response.status_code >= 400:
                response.read()
            else:
                for chunk in response.iter_bytes():
                    call.sink.write(chunk)
            return response


class AsyncTransport:
    """Sends calls with httpx.AsyncClient, waiting between retries with asyncio.sleep."""

    def __init__(self, http: httpx.AsyncClient, retry: RetryPolicy) -> None:
        self.http = http
        self.retry = retry

    async def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._once(call)
            except httpx.TransportError as exc:
                delay = self.retry.delay_for(attempt, None) if _retryable(exc, call) else None
                if delay is None:
                    raise _connection_error(exc, call) from exc
            else:
                delay = self.retry.delay_for(attempt, response)
                if delay is None:
                    return _finish(call, response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _once(self, call: Call[Any]) -> httpx.Response:
        if call.sink is None:
            return await self.http.request(call.method, call.path, **_request_kwargs(call))
        async with self.http.stream(call.method, call.path, **_request_kwargs(call)) as response:
            if response.status_code >= 400:
                await response.aread()
            else:
                async for chunk in response.aiter_bytes():
                    call.sink.write(chunk)
            return response
