"""Routes of /v1/memories: create, batch, list, read, change, forget, history, fuse, links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from memcube import cube, erasure
from memcube.errors import Forbidden, InvalidInput
from memcube.models import (CubeFilter, Erased, FuseRequest, Link, LinkCreate, MemCube, MemCubeCreate, MemCubePatch,
                            Page, Principal, Version, as_utc)
from services.api.deps import Answer, Conn, Reader, RuntimeDep, Token, Writer, run_authorized
from services.api.params import Cursor, Limit

router = APIRouter(prefix="/v1/memories", tags=["memories"])


class BatchCreate(BaseModel):
    items: list[MemCubeCreate]


class Items(BaseModel):
    items: list[MemCube]


class History(BaseModel):
    items: list[Version]


class Fused(BaseModel):
    memory: MemCube
    superseded: list[MemCube]


class Links(BaseModel):
    items: list[Link]


def parse_if_match(value: str | None) -> int | None:
    """Read `If-Match: 3`, `"3"` or `W/"3"` as version 3; raises InvalidInput otherwise."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput("If-Match must be the version number the change is based on, e.g. If-Match: 3")
    return int(raw)


IncludeForgotten = Annotated[bool, Query(description="admin only: serve a forgotten memory's content too")]


def _admin_asks(who: Principal, include_forgotten: bool) -> bool:
    """Return whether to serve forgotten content; raises Forbidden when a key without the admin scope asks."""
    if include_forgotten and "admin" not in who.scopes:
        raise Forbidden("include_forgotten=true needs a key with the `admin` scope: a forgotten memory's content "
                        "is withheld from everyone else", details={"needed": "admin"})
    return include_forgotten


def _etag(response: Response, row: dict[str, Any]) -> None:
    response.headers["ETag"] = f'"{row["version"]}"'


@router.post("", status_code=201, response_model=MemCube)
async def create_memory(body: MemCubeCreate, request: Request, rt: RuntimeDep, token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal, vectors: list[Any]) -> Answer:
        [row] = cube.create_cubes(conn, tenant=who.tenant, actor=who.actor, items=[body], embedder=rt.embedder,
                                  settings=rt.settings, vectors=vectors)
        return Answer(MemCube.model_validate(row), 201, {"ETag": f'"{row["version"]}"'})

    return await run_authorized(request, token, "write", work,
                                prepare=lambda _: cube.embed_items([body], rt.embedder, rt.settings))


@router.post("/batch", status_code=201, response_model=Items)
async def create_batch(body: BatchCreate, request: Request, rt: RuntimeDep, token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal, vectors: list[Any]) -> Answer:
        rows = cube.create_cubes(conn, tenant=who.tenant, actor=who.actor, items=body.items, embedder=rt.embedder,
                                 settings=rt.settings, vectors=vectors)
        return Answer(Items(items=rows), 201)

    return await run_authorized(request, token, "write", work,
                                prepare=lambda _: cube.embed_items(body.items, rt.embedder, rt.settings))


@router.get("", response_model=Page[MemCube])
def list_memories(conn: Conn, who: Reader, filters: Annotated[CubeFilter, Query()],
                  limit: Limit = 50,
                  cursor: Cursor = None, include_forgotten: IncludeForgotten = False) -> Any:
    items, next_cursor = cube.list_cubes(conn, tenant=who.tenant, filters=filters, limit=limit, cursor=cursor,
                                         include_forgotten=_admin_asks(who, include_forgotten))
    return {"items": items, "next_cursor": next_cursor}


@router.post("/fuse", status_code=201, response_model=Fused)
async def fuse_memories(body: FuseRequest, request: Request, rt: RuntimeDep, token: Token) -> Response:
    def work(conn: psycopg.Connection, who: Principal, prepared: cube.Prepared | None) -> Answer:
        fused, superseded = cube.fuse_cubes(conn, tenant=who.tenant, actor=who.actor, request=body,
                                            embedder=rt.embedder, settings=rt.settings, prepared=prepared)
        return Answer(Fused(memory=fused, superseded=superseded), 201)

    return await run_authorized(request, token, "write", work, prepare=lambda who: cube.prepare_fuse(
        rt.pool, tenant=who.tenant, request=body, embedder=rt.embedder))


@router.get("/{cube_id}", response_model=MemCube | Version)
def get_memory(cube_id: UUID, conn: Conn, who: Reader, response: Response,
               version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
               as_of: datetime | None = None, include_forgotten: IncludeForgotten = False) -> Any:
    row = cube.read_cube(conn, tenant=who.tenant, cube_id=cube_id, version=version, as_of=as_utc(as_of),
                         include_forgotten=_admin_asks(who, include_forgotten))
    _etag(response, row)
    return Version.model_validate(row) if "recorded_at" in row else MemCube.model_validate(row)


@router.patch("/{cube_id}", response_model=MemCube)
async def patch_memory(cube_id: UUID, body: MemCubePatch, request: Request, rt: RuntimeDep, token: Token,
                       if_match: Annotated[str | None, Header()] = None) -> Response:
    expected = parse_if_match(if_match)

    def work(conn: psycopg.Connection, who: Principal, prepared: cube.Prepared | None) -> Answer:
        row = cube.patch_cube(conn, tenant=who.tenant, actor=who.actor, cube_id=cube_id, patch=body,
                              embedder=rt.embedder, settings=rt.settings, if_match=expected, prepared=prepared,
                              may_release="admin" in who.scopes)
        return Answer(MemCube.model_validate(row), headers={"ETag": f'"{row["version"]}"'})

    return await run_authorized(request, token, "write", work, prepare=lambda who: cube.prepare_patch(
        rt.pool, tenant=who.tenant, cube_id=cube_id, patch=body, embedder=rt.embedder, settings=rt.settings))


@router.delete("/{cube_id}", response_model=MemCube | Erased)
async def delete_memory(cube_id: UUID, request: Request, rt: RuntimeDep, token: Token, erase: bool = False,
                        reason: Annotated[str | None, Query(max_length=1000)] = None,
                        if_match: Annotated[str | None, Header()] = None) -> Response:
    if reason is not None and "\x00" in reason:
        raise InvalidInput("reason must not contain NUL characters")
    expected = parse_if_match(if_match)
    done: list[erasure.Erasure] = []

    def work(conn: psycopg.Connection, who: Principal) -> Answer:
        if not erase:
            row = cube.forget_cube(conn, tenant=who.tenant, actor=who.actor, cube_id=cube_id, reason=reason,
                                   if_match=expected)
            return Answer(MemCube.model_validate(cube.withhold(row)), headers={"ETag": f'"{row["version"]}"'})
        done.append(erasure.erase_cube(conn, tenant=who.tenant, actor=who.actor, cube_id=cube_id, reason=reason,
                                       if_match=expected))
        return Answer(MemCube.model_validate(done[0].cube))

    answer = await run_authorized(request, token, "write", work)
    if not done:
        return answer
    # Committed: now the erased messages leave the Redis windows (never before, or a read in between could
    # put them back from a database that still had them).
    result = done[0]
    await run_in_threadpool(erasure.scrub_windows, rt.redis, result)
    body = Erased(**result.cube, erased=result.erased, windows_scrubbed=result.windows_scrubbed,
                  search_documents_refreshed=result.search_documents_refreshed)
    return Response(body.model_dump_json().encode(), media_type="application/json",
                    headers={"ETag": f'"{result.cube["version"]}"'})


@router.get("/{cube_id}/history", response_model=History)
def memory_history(cube_id: UUID, conn: Conn, who: Reader, include_forgotten: IncludeForgotten = False) -> Any:
    return {"items": cube.history(conn, tenant=who.tenant, cube_id=cube_id,
                                  include_forgotten=_admin_asks(who, include_forgotten))}


@router.post("/{cube_id}/links", status_code=201, response_model=Link)
def link_memory(cube_id: UUID, body: LinkCreate, conn: Conn, who: Writer) -> Any:
    return cube.link_cubes(conn, tenant=who.tenant, actor=who.actor, source_id=cube_id, link=body)


@router.get("/{cube_id}/links", response_model=Links)
def memory_links(cube_id: UUID, conn: Conn, rt: RuntimeDep, who: Reader,
                 limit: Annotated[int | None, Query(ge=1)] = None) -> Any:
    cap = min(limit or rt.settings.max_links_page, rt.settings.max_links_page)
    return {"items": cube.list_links(conn, tenant=who.tenant, cube_id=cube_id, limit=cap)}



