"""Sessions and the Redis working window through memcube functions, on the real PostgreSQL and Redis."""

import time
import uuid

import pytest
import redis

from memcube import cube, session, working
from memcube.errors import Conflict, NotFound, TooLarge
from memcube.models import MemCubePatch, MessageAppend, MessageIn, ScratchpadPut


def append(conn, client, embedder, settings, tenant, session_id, contents, agent_id="agent", user_id=None,
           role="user"):
    request = MessageAppend(agent_id=agent_id, user_id=user_id,
                            messages=[MessageIn(role=role, content=c) for c in contents])
    return session.append_messages(conn, client, tenant=tenant, actor="t", session_id=session_id, request=request,
                                   embedder=embedder, settings=settings)


def window(conn, client, settings, tenant, session_id):
    return session.working_memory(conn, client, tenant=tenant, session_id=session_id, agent_id=None,
                                  settings=settings)


def test_messages_become_episodic_cubes_with_gap_free_turns(conn, redis_client, embedder, settings, tenant):
    first = append(conn, redis_client, embedder, settings, tenant, "s1", ["hi", "how are you?"])
    second = append(conn, redis_client, embedder, settings, tenant, "s1", ["fine"], role="assistant")
    assert [m.turn for m in first.messages + second.messages] == [0, 1, 2]
    stored = cube.read_cube(conn, tenant=tenant, cube_id=second.messages[0].id)
    assert stored["kind"] == "episodic" and stored["session_id"] == "s1" and stored["tier"] == "archival"
    assert stored["metadata"] == {"role": "assistant", "turn": 2}
    assert stored["provenance"]["source"] == "message"
    assert stored["provenance"]["source_refs"] == [{"session_id": "s1", "turn": 2}]
    got = window(conn, redis_client, settings, tenant, "s1")
    assert [m.content for m in got.messages] == ["hi", "how are you?", "fine"] and not got.rebuilt
    assert got.turns == 3 and got.tokens == sum(m.tokens for m in got.messages)


def test_window_is_bounded_by_count_and_by_tokens(conn, redis_client, embedder, settings, tenant):
    by_count = settings.model_copy(update={"working_max_messages": 3})
    append(conn, redis_client, embedder, by_count, tenant, "count", [f"message {i}" for i in range(7)])
    got = window(conn, redis_client, by_count, tenant, "count")
    assert [m.content for m in got.messages] == ["message 4", "message 5", "message 6"] and not got.rebuilt

    by_tokens = settings.model_copy(update={"working_max_tokens": 20})
    for i in range(6):  # 6 tokens each: three fit in 20
        append(conn, redis_client, embedder, by_tokens, tenant, "tokens", [f"one two three four five {i}"])
    got = window(conn, redis_client, by_tokens, tenant, "tokens")
    assert [m.turn for m in got.messages] == [3, 4, 5] and got.tokens == 18 and not got.rebuilt


def test_a_lost_window_is_rebuilt_from_postgres(conn, redis_client, embedder, settings, tenant):
    small = settings.model_copy(update={"working_max_messages": 4})
    append(conn, redis_client, embedder, small, tenant, "s", [f"turn {i}" for i in range(6)])
    key = working.window_key(tenant, "agent", "s")
    before = window(conn, redis_client, small, tenant, "s")
    redis_client.delete(key)  # flushed, restarted or expired
    # Appends meanwhile do not start a partial window...
    append(conn, redis_client, embedder, small, tenant, "s", ["turn 6"])
    assert redis_client.exists(key) == 0
    # ...the next read rebuilds the whole window, and then it is served from Redis again.
    after = window(conn, redis_client, small, tenant, "s")
    assert after.rebuilt and [m.content for m in after.messages] == ["turn 3", "turn 4", "turn 5", "turn 6"]
    assert [m.id for m in after.messages[:-1]] == [m.id for m in before.messages[1:]]
    again = window(conn, redis_client, small, tenant, "s")
    assert not again.rebuilt and again.messages == after.messages
    assert 0 < redis_client.ttl(key) <= small.session_ttl_seconds


def test_an_idle_window_expires_from_redis_and_comes_back_from_postgres(conn, redis_client, embedder, settings,
                                                                        tenant):
    brief = settings.model_copy(update={"session_ttl_seconds": 1})
    append(conn, redis_client, embedder, brief, tenant, "idle", ["are you still there?"])
    key = working.window_key(tenant, "agent", "idle")
    deadline = time.monotonic() + 5
    while redis_client.exists(key):
        assert time.monotonic() < deadline, "the window never expired"
        time.sleep(0.2)
    got = window(conn, redis_client, brief, tenant, "idle")
    assert got.rebuilt and [m.content for m in got.messages] == ["are you still there?"]


def test_uncommitted_and_forgotten_messages_are_never_shown(conn, redis_client, embedder, settings, tenant):
    appended = append(conn, redis_client, embedder, settings, tenant, "s", ["keep", "secret", "keep too"])
    key = working.window_key(tenant, "agent", "s")
    # A push whose transaction rolled back: a turn PostgreSQL does not have.
    ghost = appended.messages[0].model_copy(update={"id": uuid.uuid4(), "turn": 3, "content": "ghost"})
    working.push_messages(redis_client, key, [ghost], max_messages=50, max_tokens=4000, ttl_seconds=60)
    assert [m.content for m in window(conn, redis_client, settings, tenant, "s").messages] == [
        "keep", "secret", "keep too"]
    # The next append takes turn 3 and replaces the ghost.
    append(conn, redis_client, embedder, settings, tenant, "s", ["real turn 3"])
    got = window(conn, redis_client, settings, tenant, "s")
    assert [m.content for m in got.messages] == ["keep", "secret", "keep too", "real turn 3"] and not got.rebuilt
    # Forgetting a message takes it out of the window at the next read.
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=appended.messages[1].id, erase=True)
    got = window(conn, redis_client, settings, tenant, "s")
    assert [m.content for m in got.messages] == ["keep", "keep too", "real turn 3"] and got.rebuilt


def test_an_edited_message_cube_shows_its_new_content_and_keeps_its_role(conn, redis_client, embedder, settings,
                                                                          tenant):
    [message] = append(conn, redis_client, embedder, settings, tenant, "s", ["I live in Lisbon"]).messages
    cube.patch_cube(conn, tenant=tenant, actor="t", cube_id=message.id, embedder=embedder, settings=settings,
                    patch=MemCubePatch(content="I live in Porto", metadata={"role": "robot"}))
    got = window(conn, redis_client, settings, tenant, "s")
    assert got.rebuilt and [(m.content, m.role, m.version) for m in got.messages] == [("I live in Porto", "user", 2)]


def test_messages_are_stored_when_redis_is_down(conn, redis_client, embedder, settings, tenant):
    down = redis.Redis(unix_socket_path="/nonexistent/redis.sock", decode_responses=True)
    append(conn, redis_client, embedder, settings, tenant, "s", ["before"])
    append(conn, down, embedder, settings, tenant, "s", ["while redis was down"])
    assert [m.content for m in window(conn, down, settings, tenant, "s").messages] == [
        "before", "while redis was down"]
    got = window(conn, redis_client, settings, tenant, "s")
    assert got.rebuilt and [m.content for m in got.messages] == ["before", "while redis was down"]


def test_a_session_keeps_its_agent_and_user(conn, redis_client, embedder, settings, tenant):
    append(conn, redis_client, embedder, settings, tenant, "s", ["hello"], agent_id="a", user_id="u1")
    for agent_id, user_id in (("b", "u1"), ("a", "u2"), ("a", None)):
        with pytest.raises(Conflict, match="belongs to agent 'a' and user 'u1'"):
            append(conn, redis_client, embedder, settings, tenant, "s", ["intruder"], agent_id=agent_id,
                   user_id=user_id)
    with pytest.raises(NotFound):
        session.working_memory(conn, redis_client, tenant=tenant, session_id="s", agent_id="b", settings=settings)
    with pytest.raises(NotFound):
        window(conn, redis_client, settings, tenant, "never-used")


def test_limits_refuse_the_whole_append(conn, redis_client, embedder, settings, tenant):
    tight = settings.model_copy(update={"max_session_messages": 3, "working_max_tokens": 16})
    with pytest.raises(TooLarge, match="MEMCUBE_MAX_SESSION_MESSAGES"):
        append(conn, redis_client, embedder, tight, tenant, "s", ["a"] * 4)
    with pytest.raises(TooLarge, match=r"messages\[1\].content has 20 tokens.*MEMCUBE_WORKING_MAX_TOKENS"):
        append(conn, redis_client, embedder, tight, tenant, "s", ["fine", "word " * 20])
    with pytest.raises(NotFound):
        window(conn, redis_client, tight, tenant, "s")


def test_scratchpad_is_durable_and_bounded(conn, redis_client, embedder, settings, tenant):
    append(conn, redis_client, embedder, settings, tenant, "s", ["hello"])
    pad = session.set_scratchpad(conn, tenant=tenant, session_id="s", settings=settings,
                                 body=ScratchpadPut(content="Plan: book the night train"))
    assert pad.tokens == 6
    redis_client.delete(working.window_key(tenant, "agent", "s"))
    assert window(conn, redis_client, settings, tenant, "s").scratchpad == "Plan: book the night train"
    with pytest.raises(TooLarge, match="MEMCUBE_WORKING_MAX_TOKENS"):
        session.set_scratchpad(conn, tenant=tenant, session_id="s", body=ScratchpadPut(content="w " * 20),
                               settings=settings.model_copy(update={"working_max_tokens": 16}))
    with pytest.raises(NotFound):
        session.set_scratchpad(conn, tenant=tenant, session_id="nope", body=ScratchpadPut(content="x"),
                               settings=settings)


def test_keys_of_ids_with_colons_never_meet():
    assert working.window_key("t", "a:b", "c") != working.window_key("t", "a", "b:c")
    assert working.window_key("t*", "a", "s").startswith("wm:t%2A:")
