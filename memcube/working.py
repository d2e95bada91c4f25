"""The working-memory tier in Redis: every Redis command and key name MemCube uses for it lives here.

A session's window is a sorted set `wm:{tenant}:{agent_id}:{session_id}:window` whose score is the turn
and whose member is the message as JSON (with its token count). It is a cache of PostgreSQL: pushes
replace a turn rather than add a second copy, and readers check it against the durable turns
(memcube.session), so a lost, stale or half-written window is rebuilt, never trusted.
"""

from __future__ import annotations

from typing import Sequence
from urllib.parse import quote

import redis

from memcube.models import Message

# Add messages by turn (replacing a turn already there), then keep the newest that fit both bounds.
# In `append` mode a missing window is left missing unless the batch starts the session: a window
# made of this batch alone would hide the older turns, so the next read rebuilds it from PostgreSQL.
# KEYS[1] the window; ARGV: max messages, max tokens, TTL seconds, mode, then (turn, member) pairs.
_PUSH = """
local key = KEYS[1]
local max_messages, max_tokens, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] == 'replace' then
  redis.call('DEL', key)
elseif redis.call('EXISTS', key) == 0 and tonumber(ARGV[5]) ~= 0 then
  return -1
end
for i = 5, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', key, ARGV[i], ARGV[i])
  redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', key, 0, -max_messages - 1)
local newest = redis.call('ZREVRANGE', key, 0, -1, 'WITHSCORES')
local total = 0
for i = 1, #newest, 2 do
  total = total + cjson.decode(newest[i]).tokens
  if total > max_tokens then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', newest[i + 1])
    break
  end
end
if redis.call('EXISTS', key) == 1 then
  redis.call('EXPIRE', key, ttl)
end
return redis.call('ZCARD', key)
"""


def _part(value: str | None) -> str:
    # Percent-encode so that a ':' (or a glob character) inside an id can never make two keys meet.
    return quote(value or "", safe="")


def window_key(tenant: str, agent_id: str, session_id: str) -> str:
    """Return the key of a session's working window."""
    return f"wm:{_part(tenant)}:{_part(agent_id)}:{_part(session_id)}:window"


def tenant_pattern(tenant: str) -> str:
    """Return a SCAN pattern matching every working-memory key of a tenant."""
    return f"wm:{_part(tenant)}:*"


def trim_window(messages: Sequence[Message], *, max_messages: int, max_tokens: int) -> list[Message]:
    """Return the newest messages (oldest first) that fit both bounds, as the push script keeps them."""
    kept: list[Message] = []
    total = 0
    for message in sorted(messages, key=lambda m: m.turn, reverse=True)[:max_messages]:
        total += message.tokens
        if total > max_tokens:
            break
        kept.append(message)
    return kept[::-1]


def _push(client: redis.Redis, key: str, messages: Sequence[Message], *, max_messages: int, max_tokens: int,
          ttl_seconds: int, mode: str) -> int:
    args: list[str | int] = [max_messages, max_tokens, ttl_seconds, mode]
    for message in sorted(messages, key=lambda m: m.turn):
        args += [message.turn, message.model_dump_json()]
    return int(client.register_script(_PUSH)(keys=[key], args=args))


def push_messages(client: redis.Redis, key: str, messages: Sequence[Message], *, max_messages: int,
                  max_tokens: int, ttl_seconds: int) -> int:
    """Add messages to a window and trim it; return its size, or -1 when the window is missing and left to
    be rebuilt. Raises redis.RedisError."""
    return _push(client, key, messages, max_messages=max_messages, max_tokens=max_tokens,
                 ttl_seconds=ttl_seconds, mode="append")


def replace_window(client: redis.Redis, key: str, messages: Sequence[Message], *, max_messages: int,
                   max_tokens: int, ttl_seconds: int) -> int:
    """Replace a window with the given messages (trimmed); return its size. Raises redis.RedisError."""
    return _push(client, key, messages, max_messages=max_messages, max_tokens=max_tokens,
                 ttl_seconds=ttl_seconds, mode="replace")


def read_window(client: redis.Redis, key: str, *, ttl_seconds: int) -> list[Message]:
    """Return a window's messages, oldest first (empty when the window is missing), and keep it alive for
    another TTL. Raises redis.RedisError."""
    with client.pipeline(transaction=True) as pipe:
        pipe.zrange(key, 0, -1)
        pipe.expire(key, ttl_seconds)
        members, _ = pipe.execute()
    return [Message.model_validate_json(member) for member in members]



def remove_turns(client: redis.Redis, key: str, turns: Sequence[int]) -> int:
    """Remove the messages of the given turns from a window; return how many it held. Raises redis.RedisError."""
    with client.pipeline(transaction=True) as pipe:
        for turn in turns:
            pipe.zremrangebyscore(key, turn, turn)
        return sum(int(n) for n in pipe.execute())
