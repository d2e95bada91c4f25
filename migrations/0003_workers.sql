-- Background work: the transactional outbox, jobs with leases, and the
-- consolidation state of each scope (agent, user).

-- The transaction that wrote each cube. Consolidation reads a scope's episodes in
-- (xact_id, id) order and only below the xmin of its snapshot: every transaction
-- with a smaller id has finished, so an insert that commits late (created_at is
-- the start of its transaction, and sequences are not assigned in commit order)
-- is consolidated by the next run instead of being skipped. Existing rows get the
-- id of this migration, below any later snapshot, so they are all consolidated.
ALTER TABLE memcubes ADD COLUMN xact_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX memcubes_episode_order ON memcubes (tenant, agent_id, user_id, xact_id, id) WHERE kind = 'episodic';

-- One row per scope that has ever had an episode: how far consolidation got (the
-- last episode consumed, in (xact_id, id) order), and what is pending since. The
-- insert path bumps pending_episodes and last_episode_at in the same transaction
-- as the episodes; consolidation moves the mark in the same transaction as its results.
CREATE TABLE consolidation_scopes (
    tenant            text NOT NULL,
    agent_id          text NOT NULL,
    user_id           text,
    mark_xact         xid8,
    mark_id           uuid,
    pending_episodes  integer NOT NULL DEFAULT 0 CHECK (pending_episodes >= 0),
    last_episode_at   timestamptz,
    consolidated_at   timestamptz,
    last_job_id       uuid,
    CONSTRAINT consolidation_scopes_scope UNIQUE NULLS NOT DISTINCT (tenant, agent_id, user_id),
    CHECK ((mark_xact IS NULL) = (mark_id IS NULL))
);
CREATE INDEX consolidation_scopes_pending ON consolidation_scopes (last_episode_at) WHERE pending_episodes > 0;

INSERT INTO consolidation_scopes (tenant, agent_id, user_id, pending_episodes, last_episode_at)
SELECT tenant, agent_id, user_id, count(*), max(created_at) FROM memcubes WHERE kind = 'episodic'
GROUP BY tenant, agent_id, user_id;

-- Background work a client or a trigger asked for, and how it went. A worker owns
-- a running job while lease_until is in the future (it renews the lease as it goes);
-- a job whose lease ran out is free for the next attempt.
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    tenant          text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('consolidate')),
    agent_id        text NOT NULL,
    user_id         text,
    trigger         text NOT NULL CHECK (trigger IN ('api', 'episodes', 'idle', 'schedule')),
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    -- The engine asked for (NULL: the configured one) until the job runs, then the one used.
    engine          text CHECK (engine IN ('heuristic', 'llm')),
    model           text,
    prompt_version  text,
    counts          jsonb NOT NULL DEFAULT '{}',
    tokens_in       bigint NOT NULL DEFAULT 0,
    tokens_out      bigint NOT NULL DEFAULT 0,
    llm_calls       integer NOT NULL DEFAULT 0,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    actor           text,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one queued job per scope and engine: triggers that fire again while one
-- waits join it (it reads the scope's episodes when it runs, not when it is queued).
CREATE UNIQUE INDEX jobs_one_queued ON jobs (tenant, kind, agent_id, user_id, engine) NULLS NOT DISTINCT
    WHERE state = 'queued';
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE state IN ('queued', 'running');

-- Work to publish to the broker, written in the same transaction as the data that
-- needs it. The relay claims rows with FOR UPDATE SKIP LOCKED, publishes them and
-- sets sent_at; a row whose publish failed waits until available_at and is tried again.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task          text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX outbox_unsent ON outbox (available_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
