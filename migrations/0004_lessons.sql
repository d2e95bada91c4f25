-- Lessons: trajectories in, distillation jobs, and the distillation state of each scope.
-- A trajectory is an episodic cube (source `trajectory`, its steps in `data`); a lesson is a
-- procedural cube (source `distillation`). These tables hold only what distillation needs beside them.

-- Every trajectory cube, and whether a distillation has taken it. A job takes the scope's rows that
-- no distillation has taken yet and marks them in the transaction that writes its lessons, so a row
-- that commits late is simply taken by the next job, and a job that dies takes nothing.
-- Consolidation leaves the cubes listed here alone: they are distilled, not consolidated.
CREATE TABLE trajectories (
    cube_id       uuid PRIMARY KEY REFERENCES memcubes (id) ON DELETE CASCADE,
    tenant        text NOT NULL,
    agent_id      text NOT NULL,
    user_id       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    distilled_at  timestamptz,
    distilled_by  uuid
);
CREATE INDEX trajectories_pending ON trajectories (tenant, agent_id, user_id, created_at, cube_id)
    WHERE distilled_at IS NULL;
CREATE INDEX trajectories_list ON trajectories (tenant, agent_id, created_at DESC, cube_id DESC);

-- One row per scope (agent, user) that has had a trajectory: what is pending, when the last one came,
-- and a generation that every distillation write bumps under the row's lock, so a plan made before
-- another job's write is seen to be stale and made again.
CREATE TABLE distill_scopes (
    tenant                text NOT NULL,
    agent_id              text NOT NULL,
    user_id               text,
    pending_trajectories  integer NOT NULL DEFAULT 0 CHECK (pending_trajectories >= 0),
    last_trajectory_at    timestamptz,
    generation            bigint NOT NULL DEFAULT 0,
    distilled_at          timestamptz,
    last_job_id           uuid,
    CONSTRAINT distill_scopes_scope UNIQUE NULLS NOT DISTINCT (tenant, agent_id, user_id)
);
CREATE INDEX distill_scopes_pending ON distill_scopes (last_trajectory_at) WHERE pending_trajectories > 0;

-- Jobs of a new kind, and a new trigger: N new trajectories.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('consolidate', 'distill'));
ALTER TABLE jobs DROP CONSTRAINT jobs_trigger_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_trigger_check
    CHECK (trigger IN ('api', 'episodes', 'idle', 'schedule', 'trajectories'));
