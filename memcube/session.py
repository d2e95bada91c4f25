"""Sessions and their working memory: messages are written durably first, then to the Redis window.

Every message becomes an episodic cube (source `message`) with its turn, in the caller's transaction;
the Redis window is a cache of the newest turns. Reads compare the window with the durable turns and
rebuild it from PostgreSQL when they differ (Redis flushed, restarted, expired, or a push that never
committed), so no message is ever lost and none is shown that was not stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
import redis

from memcube import tokens, working
from memcube.config import Settings
from memcube.cube import check_content, create_cubes
from memcube.embedder import Embedder
from memcube.errors import Conflict, NotFound, TooLarge
from memcube.models import (Appended, MemCubeCreate, Message, MessageAppend, QuarantinedMessage, Scratchpad,
                            ScratchpadPut, SessionSummary, WorkingMemory)
from memcube.store import sessions as store
from memcube.store.cursor import check_limit, decode_cursor, encode_cursor

log = logging.getLogger(__name__)


def _window_bounds(settings: Settings) -> dict[str, int]:
    return {"max_messages": settings.working_max_messages, "max_tokens": settings.working_max_tokens,
            "ttl_seconds": settings.session_ttl_seconds}


def _check_messages(request: MessageAppend, settings: Settings) -> list[int]:
    """Return each message's token count; raises TooLarge for a batch or a message over its limit."""
    if len(request.messages) > settings.max_session_messages:
        raise TooLarge(f"an append holds at most {settings.max_session_messages} messages "
                       f"(MEMCUBE_MAX_SESSION_MESSAGES); got {len(request.messages)}",
                       details={"limit": settings.max_session_messages})
    for index, message in enumerate(request.messages):
        check_content(message.content, settings, where=f"messages[{index}].content")
    counts = tokens.count_many([m.content for m in request.messages])
    for index, n in enumerate(counts):
        if n > settings.working_max_tokens:
            raise TooLarge(f"messages[{index}].content has {n} tokens; a message must fit the working window of "
                           f"{settings.working_max_tokens} tokens (MEMCUBE_WORKING_MAX_TOKENS)",
                           details={"limit": settings.working_max_tokens, "index": index})
    return counts


@dataclass(frozen=True)
class PreparedAppend:
    """An append checked and embedded before any connection or lock is taken."""

    counts: list[int]
    vectors: list[Any]


def prepare_append(request: MessageAppend, embedder: Embedder, settings: Settings) -> PreparedAppend:
    """Check the messages and embed them; raises TooLarge. Embedding takes milliseconds: done before the
    session's row lock, so concurrent appends to a session wait only for each other's inserts."""
    counts = _check_messages(request, settings)
    return PreparedAppend(counts, embedder.embed([m.content for m in request.messages]))


def append_messages(conn: psycopg.Connection, client: redis.Redis, *, tenant: str, actor: str, session_id: str,
                    request: MessageAppend, embedder: Embedder, settings: Settings,
                    prepared: PreparedAppend | None = None) -> Appended:
    """Store messages as episodic cubes with the next turns of the session (created on first use), then push
    them to the working window. Raises TooLarge, InvalidInput, or Conflict when the session belongs to
    another agent or user; then nothing is stored.

    The push happens inside the caller's transaction: if it rolls back, readers never show the pushed turns
    (they are checked against PostgreSQL) and the next append overwrites them.
    """
    prepared = prepared or prepare_append(request, embedder, settings)
    counts = prepared.counts
    first = store.claim_turns(conn, tenant=tenant, session_id=session_id, agent_id=request.agent_id,
                              user_id=request.user_id, n=len(request.messages))
    if first is None:
        owner = store.get_session(conn, tenant=tenant, session_id=session_id)
        raise Conflict(f"session {session_id} belongs to agent {owner['agent_id']!r} and user "
                       f"{owner['user_id']!r}; append with those, or use another session_id",
                       details={"agent_id": owner["agent_id"], "user_id": owner["user_id"]})
    now = datetime.now(timezone.utc)
    turns = [first + i for i in range(len(request.messages))]
    items = [MemCubeCreate(agent_id=request.agent_id, user_id=request.user_id, session_id=session_id,
                           kind="episodic", tier="archival", content=m.content, occurred_at=m.created_at or now,
                           metadata={"role": m.role, "turn": turn, **({"name": m.name} if m.name else {})})
             for m, turn in zip(request.messages, turns)]
    refs = [{"source_refs": [{"session_id": session_id, "turn": turn}]} for turn in turns]
    rows = create_cubes(conn, tenant=tenant, actor=actor, items=items, embedder=embedder, settings=settings,
                        source="message", extra_provenance=refs, vectors=prepared.vectors)
    store.insert_turns(conn, tenant=tenant, session_id=session_id,
                       turns=[(t, m.role, m.name, r["id"]) for t, m, r in zip(turns, request.messages, rows)])
    messages = [_message({**row, "turn": turn, "role": m.role, "name": m.name}, n)
                for row, turn, m, n in zip(rows, turns, request.messages, counts)]
    # Quarantined messages (poisoning defence) are stored with their turn but never shown in the window.
    quarantined = [QuarantinedMessage(id=r["id"], turn=t, reason=r["provenance"].get("reason") or "",
                                      poisoning=r["provenance"].get("poisoning") or {})
                   for r, t in zip(rows, turns) if r["status"] == "quarantined"]
    shown = [m for m, r in zip(messages, rows) if r["status"] != "quarantined"]
    key = working.window_key(tenant, request.agent_id, session_id)
    try:
        if shown:
            working.push_messages(client, key, shown, **_window_bounds(settings))
    except redis.RedisError as exc:
        # The messages are stored; the next read finds the window behind and rebuilds it.
        log.warning("working window of session %s not updated (%s); it will be rebuilt", session_id, exc)
    return Appended(session_id=session_id, agent_id=request.agent_id, user_id=request.user_id, messages=messages,
                    quarantined=quarantined)


def _message(row: dict[str, Any], n_tokens: int) -> Message:
    """Return a message from its cube's row with the session's `turn`, `role` and `name` added."""
    return Message(id=row["id"], version=row["version"], turn=row["turn"], role=row["role"], name=row["name"],
                   content=row["content"], created_at=row["occurred_at"] or row["created_at"], tokens=n_tokens)


def open_session(conn: psycopg.Connection, *, tenant: str, session_id: str, agent_id: str | None = None,
                 user_id: str | None = None) -> dict[str, Any]:
    """Return a session; raises NotFound when it does not exist or belongs to another agent or user."""
    session = store.get_session(conn, tenant=tenant, session_id=session_id)
    if (agent_id is not None and session["agent_id"] != agent_id) or (
            user_id is not None and session["user_id"] != user_id):
        raise NotFound(f"session {session_id} not found for agent {agent_id!r}"
                       + (f" and user {user_id!r}" if user_id is not None else ""))
    return session


def load_window(conn: psycopg.Connection, client: redis.Redis, *, tenant: str, session: dict[str, Any],
                settings: Settings) -> tuple[list[Message], bool]:
    """Return a session's working window, oldest first, and whether it had to be rebuilt from PostgreSQL.

    Works without Redis too (then it is always rebuilt, and not written back).
    """
    key = working.window_key(tenant, session["agent_id"], session["session_id"])
    end = session["next_turn"]
    try:
        # Turns at or past `end` were pushed by appends this transaction cannot see committed (yet, or ever).
        cached = [m for m in working.read_window(client, key, ttl_seconds=settings.session_ttl_seconds)
                  if m.turn < end]
    except redis.RedisError as exc:
        log.warning("working window of session %s unreadable (%s); reading PostgreSQL", session["session_id"], exc)
        return _recent(conn, tenant, session, settings), True
    if cached:
        durable = store.list_turns(conn, tenant=tenant, session_id=session["session_id"], first=cached[0].turn,
                                   end=end)
        # Every shown turn from the window's first to the last committed one, at the same version.
        if durable == [(m.turn, m.id, m.version) for m in cached]:
            return cached, False
    messages = _recent(conn, tenant, session, settings)
    try:
        working.replace_window(client, key, messages, **_window_bounds(settings))
    except redis.RedisError as exc:
        log.warning("working window of session %s not rebuilt in Redis (%s)", session["session_id"], exc)
    return messages, True


def _recent(conn: psycopg.Connection, tenant: str, session: dict[str, Any], settings: Settings) -> list[Message]:
    rows = store.list_recent(conn, tenant=tenant, session_id=session["session_id"], end=session["next_turn"],
                             limit=settings.working_max_messages)
    counts = tokens.count_many([r["content"] for r in rows])
    messages = [_message(row, n) for row, n in zip(rows, counts)]
    return working.trim_window(messages, max_messages=settings.working_max_messages,
                               max_tokens=settings.working_max_tokens)


def working_memory(conn: psycopg.Connection, client: redis.Redis, *, tenant: str, session_id: str,
                   agent_id: str | None, settings: Settings) -> WorkingMemory:
    """Return a session's window and scratchpad; raises NotFound for an unknown session (or another agent's)."""
    session = open_session(conn, tenant=tenant, session_id=session_id, agent_id=agent_id)
    messages, rebuilt = load_window(conn, client, tenant=tenant, session=session, settings=settings)
    return WorkingMemory(session_id=session_id, agent_id=session["agent_id"], user_id=session["user_id"],
                         messages=messages, scratchpad=session["scratchpad"], tokens=sum(m.tokens for m in messages),
                         turns=session["next_turn"], rebuilt=rebuilt)


def list_sessions(conn: psycopg.Connection, *, tenant: str, agent_id: str, user_id: str | None = None,
                  limit: int, cursor: str | None) -> tuple[list[SessionSummary], str | None]:
    """Return one page of an agent's sessions (of one user, if given), newest first, and the next page's cursor
    (None at the end); raises InvalidInput for a bad limit or cursor."""
    check_limit(limit)
    after = decode_cursor(cursor, datetime, str) if cursor else None
    rows = store.list_sessions(conn, tenant=tenant, agent_id=agent_id, user_id=user_id, after=after, limit=limit + 1)
    items = [SessionSummary(turns=row["next_turn"], **row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return items, None if last is None else encode_cursor(last["created_at"], last["session_id"])


def set_scratchpad(conn: psycopg.Connection, *, tenant: str, session_id: str, body: ScratchpadPut,
                   settings: Settings) -> Scratchpad:
    """Replace a session's scratchpad; raises NotFound, or TooLarge over the working window's token bound."""
    open_session(conn, tenant=tenant, session_id=session_id, agent_id=body.agent_id)
    check_content(body.content, settings)
    n = tokens.count(body.content)
    if n > settings.working_max_tokens:
        raise TooLarge(f"the scratchpad has {n} tokens; the limit is {settings.working_max_tokens} "
                       "(MEMCUBE_WORKING_MAX_TOKENS)", details={"limit": settings.working_max_tokens})
    session = store.set_scratchpad(conn, tenant=tenant, session_id=session_id, content=body.content)
    return Scratchpad(session_id=session_id, agent_id=session["agent_id"], user_id=session["user_id"],
                      content=session["scratchpad"], tokens=n)
