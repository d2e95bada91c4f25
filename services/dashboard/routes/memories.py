"""Memories: the browser (hybrid search with its explanation, or filtered cursor pages), one cube (content,
metadata, versions with diffs, lineage, links) and the changes made to it, each confirmed first.

Every change goes through the memcube function the API uses for it, with the dashboard user as the actor, and
names the version it was reviewed against (If-Match): a cube changed meanwhile is a 412, not a silent overwrite.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from memcube import agent, core, cube, diff, erasure, lineage, search
from memcube.errors import Conflict, InvalidInput, StaleVersion
from memcube.models import (KINDS, STATUSES, TIERS, CoreBlockPut, CubeFilter, Kind, MemCubePatch, SearchRequest,
                            Status, Tier, check_text)
from services.dashboard.deps import PREFIX, Change, DashboardRoute, View, Viewer, blanks_to_none
from services.dashboard.render import render

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

Action = Literal["to-core", "to-archival", "quarantine", "reactivate", "forget", "erase"]
# What each action does, for its confirmation page and for the note after it ran.
ACTIONS: dict[str, tuple[str, str, bool]] = {
    "to-core": ("Move to the core tier", "It will be in context every time, within the scope's core budget.",
                False),
    "to-archival": ("Move to the archival tier", "It will be recalled by search only.", False),
    "quarantine": ("Quarantine", "It leaves search, context and working windows until it is reactivated; its "
                   "content is kept.", False),
    "reactivate": ("Reactivate", "It comes back to search and context.", False),
    "forget": ("Forget", "It becomes a tombstone (status forgotten): it leaves search and context for good, and "
               "can no longer change. Its history keeps the content, shown only to an admin who asks.", True),
    "erase": ("Erase", "Its content, data, tags, metadata, vector and provenance text are removed from every "
              "version, and so is every memory derived from it (fused, consolidated facts, summaries); only "
              "the tombstones and their lineage are kept. This cannot be undone.", True),
}
DONE = {"edited": "Saved: a new version was written.", "to-core": "Moved to the core tier.",
        "to-archival": "Moved to the archival tier.", "quarantine": "Quarantined.", "reactivate": "Reactivated.",
        "forget": "Forgotten: a tombstone version was written.",
        "erase": "Erased: the content is gone from every version."}


class Browse(BaseModel):
    """The memory browser's form: a query searches one agent; without one, the filters list cursor pages."""

    q: Annotated[str, Field(max_length=4096)] | None = None
    agent_id: Annotated[str, Field(max_length=256)] | None = None
    user_id: Annotated[str, Field(max_length=256)] | None = None
    session_id: Annotated[str, Field(max_length=256)] | None = None
    kind: Kind | None = None
    tier: Tier | None = None
    status: Status | Literal["any"] = "active"
    tag: Annotated[str, Field(max_length=128)] | None = None
    since: date | None = None
    until: date | None = None
    k: int = Field(default=20, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=512)] | None = None

    _blanks = model_validator(mode="before")(blanks_to_none)

    @field_validator("q", "agent_id", "user_id", "session_id", "tag", "cursor")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value)


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=timezone.utc)


def _search(viewer: Viewer, params: Browse) -> Any:
    statuses: list[Any] | None
    if params.status == "any":
        statuses = list(STATUSES)
    elif params.status == "active" and params.since is not None:
        statuses = None  # as of a time, search takes what was active then, superseded since included
    else:
        statuses = [params.status]
    request = SearchRequest(agent_id=params.agent_id or "", user_id=params.user_id, session_id=params.session_id,
                            query=params.q or "", k=params.k, kinds=[params.kind] if params.kind else None,
                            tiers=[params.tier] if params.tier else None, tags=[params.tag] if params.tag else None,
                            statuses=statuses, as_of=_midnight(params.since), explain=True)
    rt = viewer.runtime
    # No access is recorded: an operator browsing must not change what paging thinks the agent uses.
    return search.search(viewer.conn, tenant=viewer.tenant, request=request, embedder=rt.embedder,
                         settings=rt.settings, stats=rt.stats, access=None, quarantined=True)


@router.get("/memories")
def browse_page(request: Request, viewer: View, params: Annotated[Browse, Query()]) -> Any:
    hits = plan = cubes = next_cursor = notice = None
    if params.q and not params.agent_id:
        notice = "Search looks in one agent: pick an agent, or clear the search box to list memories."
        cubes = []
    elif params.q:
        result = _search(viewer, params)
        hits, plan = result.hits, result.plan
    else:
        filters = CubeFilter(agent_id=params.agent_id, user_id=params.user_id, session_id=params.session_id,
                             kind=params.kind, tier=params.tier, status=params.status, tag=params.tag,
                             since=_midnight(params.since), until=_midnight(params.until))
        cubes, next_cursor = cube.list_cubes(viewer.conn, tenant=viewer.tenant, filters=filters, limit=50,
                                             cursor=params.cursor)
    return render(request, viewer, "memories.html", params=params.model_dump(mode="json"), hits=hits, plan=plan,
                  cubes=cubes, next_cursor=next_cursor, notice=notice, kinds=KINDS, tiers=TIERS,
                  statuses=("active", "any") + tuple(s for s in STATUSES if s != "active"),
                  agent_ids=agent.list_agent_ids(viewer.conn, tenant=viewer.tenant))


@router.get("/memories/{cube_id}")
def cube_page(request: Request, viewer: View, cube_id: UUID, done: str | None = None) -> Any:
    conn, tenant = viewer.conn, viewer.tenant
    current = cube.read_cube(conn, tenant=tenant, cube_id=cube_id)
    versions = cube.history(conn, tenant=tenant, cube_id=cube_id)
    diffs = diff.diff_history(versions)
    return render(request, viewer, "cube.html", cube=current, versions=versions,
                  history=list(zip(versions, diffs))[::-1], done=DONE.get(done or ""),
                  lineage=lineage.get_lineage(conn, tenant=tenant, cube_id=cube_id),
                  links=cube.list_links(conn, tenant=tenant, cube_id=cube_id,
                                        limit=viewer.runtime.settings.max_links_page))


class Edit(BaseModel):
    """The edit form, as posted for review and again to save."""

    version: int = Field(ge=1)
    content: str
    tags: str | None = None
    importance: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    reason: Annotated[str, Field(max_length=1000)] | None = None

    _blanks = model_validator(mode="before")(blanks_to_none)

    @field_validator("content")
    @classmethod
    def _lines(cls, value: str) -> str:
        # Browsers post a textarea's line breaks as CRLF: keep the stored LF ones, or every edit changes them all.
        return check_text(value.replace("\r\n", "\n"))

    def tag_list(self) -> list[str] | None:
        if self.tags is None:
            return None
        return list(dict.fromkeys(t.strip() for t in self.tags.split(",") if t.strip()))


def _proposal(current: dict[str, Any], edit: Edit) -> dict[str, Any]:
    """The fields the edit changes; raises StaleVersion when the cube moved on, Conflict when it is forgotten,
    InvalidInput when nothing changes."""
    if current["status"] == "forgotten":
        raise Conflict(f"memory {current['id']} is forgotten and cannot change")
    if current["version"] != edit.version:
        raise StaleVersion(f"memory {current['id']} changed since you opened it: it is at version "
                           f"{current['version']}, not {edit.version}. Open it again to see the change.",
                           details={"current_version": current["version"]})
    asked = {"content": edit.content}
    if current["label"] is None:
        asked.update(tags=edit.tag_list(), importance=edit.importance, confidence=edit.confidence)
    changes = {k: v for k, v in asked.items() if v is not None and not diff.same_value(current[k], v)}
    if not changes:
        raise InvalidInput("the edit changes nothing")
    return changes


@router.get("/memories/{cube_id}/edit")
def edit_page(request: Request, viewer: View, cube_id: UUID) -> Any:
    return render(request, viewer, "edit.html", cube=cube.read_cube(viewer.conn, tenant=viewer.tenant,
                                                                     cube_id=cube_id))


@router.post("/memories/{cube_id}/edit/review")
def review_edit(request: Request, viewer: Change, cube_id: UUID, edit: Annotated[Edit, Form()]) -> Any:
    current = cube.read_cube(viewer.conn, tenant=viewer.tenant, cube_id=cube_id)
    changes = _proposal(current, edit)
    proposed = {**current, **changes, "version": current["version"] + 1}
    return render(request, viewer, "edit_review.html", cube=current, edit=edit,
                  diff=diff.diff_versions(current, proposed))


@router.post("/memories/{cube_id}/edit")
def save_edit(viewer: Change, cube_id: UUID, edit: Annotated[Edit, Form()]) -> Any:
    conn, tenant, rt = viewer.conn, viewer.tenant, viewer.runtime
    current = cube.read_cube(conn, tenant=tenant, cube_id=cube_id)
    changes = _proposal(current, edit)
    if current["label"] is not None:
        core.put_block(conn, tenant=tenant, actor=viewer.actor, agent_id=current["agent_id"],
                       user_id=current["user_id"], label=current["label"],
                       body=CoreBlockPut(content=changes["content"], reason=edit.reason), embedder=rt.embedder,
                       settings=rt.settings, if_match=edit.version)
    else:
        cube.patch_cube(conn, tenant=tenant, actor=viewer.actor, cube_id=cube_id,
                        patch=MemCubePatch(**changes, reason=edit.reason), embedder=rt.embedder,
                        settings=rt.settings, if_match=edit.version)
    return RedirectResponse(f"{PREFIX}/memories/{cube_id}?done=edited", status_code=303)


@router.get("/memories/{cube_id}/confirm")
def confirm_page(request: Request, viewer: View, cube_id: UUID, action: Action) -> Any:
    current = cube.read_cube(viewer.conn, tenant=viewer.tenant, cube_id=cube_id)
    heading, effect, dangerous = ACTIONS[action]
    return render(request, viewer, "confirm.html", heading=f"{heading}: memory {cube_id}",
                  description=f"{effect} This writes version {current['version'] + 1}, recorded as done by "
                              f"{viewer.actor}.",
                  preview=current["content"], action_url=f"{PREFIX}/memories/{cube_id}/action",
                  hidden={"action": action, "version": current["version"]}, with_reason=True,
                  button=heading, dangerous=dangerous, cancel_url=f"{PREFIX}/memories/{cube_id}")


@router.post("/memories/{cube_id}/action")
def apply_action(viewer: Change, cube_id: UUID, action: Annotated[Action, Form()],
                 version: Annotated[int, Form(ge=1)], background: BackgroundTasks,
                 reason: Annotated[str | None, Form(max_length=1000)] = None) -> Any:
    conn, tenant, rt = viewer.conn, viewer.tenant, viewer.runtime
    reason = check_text(reason) if reason else None
    if action == "erase":
        done = erasure.erase_cube(conn, tenant=tenant, actor=viewer.actor, cube_id=cube_id, reason=reason,
                                  if_match=version)
        # Background tasks run after the response, so after the request's transaction committed.
        background.add_task(erasure.scrub_windows, rt.redis, done)
    elif action == "forget":
        cube.forget_cube(conn, tenant=tenant, actor=viewer.actor, cube_id=cube_id, reason=reason, if_match=version)
    else:
        change = {"to-core": {"tier": "core"}, "to-archival": {"tier": "archival"},
                  "quarantine": {"status": "quarantined"}, "reactivate": {"status": "active"}}[action]
        cube.patch_cube(conn, tenant=tenant, actor=viewer.actor, cube_id=cube_id,
                        patch=MemCubePatch(**change, reason=reason), embedder=rt.embedder, settings=rt.settings,
                        if_match=version)
    return RedirectResponse(f"{PREFIX}/memories/{cube_id}?done={action}", status_code=303)
