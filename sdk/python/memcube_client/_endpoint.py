"""Each route of the API is written once, as a method that returns a `Call`; the descriptors here turn it into
a blocking method on `MemCube`'s resources and an awaitable one on `AsyncMemCube`'s."""

from __future__ import annotations

from typing import (TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Concatenate, Generic, Iterator,
                    ParamSpec, TypeVar, overload)

import httpx
from pydantic import BaseModel, TypeAdapter

from memcube_client._transport import Call
from memcube_client.models import Page

if TYPE_CHECKING:
    from memcube_client._transport import AsyncTransport, SyncTransport

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound="Mode")

# Every (method, path template) the client covers; tests compare it with the service's routes.
ROUTES: set[tuple[str, str]] = set()


class Mode:
    """Whether a resource's methods block or return awaitables (a type-level tag)."""


class Sync(Mode):
    pass


class Async(Mode):
    pass


class Resource(Generic[M]):
    """A group of routes (memories, sessions, ...) bound to one client's transport."""

    def __init__(self, transport: SyncTransport | AsyncTransport) -> None:
        self._transport = transport


def parse_model(model: Any) -> Callable[[httpx.Response], Any]:
    """Return a parser of a JSON answer into `model` (a pydantic model or any type a TypeAdapter takes)."""
    adapter = None if isinstance(model, type) and issubclass(model, BaseModel) else TypeAdapter(model)

    def parse(response: httpx.Response) -> Any:
        if adapter is not None:
            return adapter.validate_json(response.content)
        return model.model_validate_json(response.content)

    return parse


def body(**fields: Any) -> dict[str, Any]:
    """Return a JSON body of the fields given (None means "not given", so the service's default applies)."""
    return {key: value for key, value in fields.items() if value is not None}


class endpoint(Generic[P, T]):  # noqa: N801 - used as a decorator
    """A route: `build(self, ...)` returns its Call; bound to a Sync resource it sends the call and returns the
    answer, bound to an Async one it returns a coroutine of it."""

    def __init__(self, method: str, path: str) -> None:
        ROUTES.add((method, path))
        self.route = (method, path)

    def __call__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> _Bound[P, T]:
        return _Bound(build)


class _Bound(Generic[P, T]):
    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: Resource[Sync], owner: Any) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: Any) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, obj: None, owner: Any) -> _Bound[P, T]: ...

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        build = self.build

        def send(*args: P.args, **kwargs: P.kwargs) -> Any:
            return obj._transport.send(build(obj, *args, **kwargs))

        send.__doc__, send.__name__ = build.__doc__, build.__name__
        return send


class pages(Generic[P, T]):  # noqa: N801 - used as a descriptor
    """Every item of a listing, page after page, following `next_cursor`: an iterator on a Sync resource, an
    async iterator on an Async one. Wraps the listing's endpoint; takes its arguments but `cursor`."""

    def __init__(self, listing: _Bound[P, Page[T]]) -> None:
        self.build = listing.build
        self.__doc__ = f"Every item of `{listing.__name__}`, page after page (follows `next_cursor`)."

    @overload
    def __get__(self, obj: Resource[Sync], owner: Any) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: Any) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, obj: None, owner: Any) -> pages[P, T]: ...

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        build, transport = self.build, obj._transport

        def iterate(*args: Any, **kwargs: Any) -> Iterator[T]:
            cursor = kwargs.pop("cursor", None)
            while True:
                page = transport.send(build(obj, *args, cursor=cursor, **kwargs))
                yield from page.items
                if not page.next_cursor:
                    return
                cursor = page.next_cursor

        async def aiterate(*args: Any, **kwargs: Any) -> AsyncIterator[T]:
            cursor = kwargs.pop("cursor", None)
            while True:
                page = await transport.send(build(obj, *args, cursor=cursor, **kwargs))
                for item in page.items:
                    yield item
                if not page.next_cursor:
                    return
                cursor = page.next_cursor

        from memcube_client._transport import AsyncTransport

        return aiterate if isinstance(transport, AsyncTransport) else iterate
