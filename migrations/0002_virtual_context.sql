-- Virtual context: labelled core blocks, sessions with gap-free turns, and the
-- indexes context assembly and paging read through.

-- A core block is a cube with a label (persona, human, ...). The label is part of
-- the version history like every other field.
ALTER TABLE memcubes ADD COLUMN label text;
ALTER TABLE memcube_versions ADD COLUMN label text;

-- One active block per label in a scope (the agent, or one user of the agent).
CREATE UNIQUE INDEX memcubes_core_label ON memcubes (tenant, agent_id, coalesce(user_id, ''), label)
    WHERE label IS NOT NULL AND status = 'active';
-- The core of a scope: read by every context assembly and every paging run.
CREATE INDEX memcubes_core ON memcubes (tenant, agent_id, user_id)
    WHERE tier = 'core' AND status = 'active';
-- Lessons of a scope: few rows among many, so a partial index instead of a filtered scope scan.
CREATE INDEX memcubes_lessons ON memcubes (tenant, agent_id, user_id)
    WHERE kind = 'procedural' AND status = 'active';

-- A conversation: which agent (and user) it belongs to, and the next turn number.
-- Appends take the row lock through INSERT ... ON CONFLICT DO UPDATE, so turns are
-- unique and gap-free even when appends race; a rolled-back append rolls its turns back.
CREATE TABLE sessions (
    tenant           text NOT NULL,
    session_id       text NOT NULL,
    agent_id         text NOT NULL,
    user_id          text,
    next_turn        bigint NOT NULL DEFAULT 0,
    -- Working notes of the session; kept here so that losing Redis loses no data.
    scratchpad       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_message_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, session_id)
);

-- Each turn of a session: who spoke, and the episodic cube that holds what was said
-- (its content, versioned). The durable copy the Redis window is rebuilt from.
CREATE TABLE session_messages (
    tenant      text NOT NULL,
    session_id  text NOT NULL,
    turn        bigint NOT NULL,
    role        text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    name        text,
    cube_id     uuid NOT NULL UNIQUE REFERENCES memcubes (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant, session_id, turn),
    FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, session_id) ON DELETE CASCADE
);
