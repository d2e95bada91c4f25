-- The admin dashboard: signed-in sessions, and the indexes behind the discovery
-- listings (GET /v1/sessions, GET /v1/jobs) and the dashboard's pages.

-- One row per dashboard sign-in. The browser holds the session id, signed; only its
-- SHA-256 is stored, so this table cannot be replayed as cookies. Signing out deletes
-- the row, which ends the session everywhere the cookie may have been copied.
CREATE TABLE dashboard_sessions (
    id_hash     bytea PRIMARY KEY,
    -- The tenant the session acts in: the key's own, or the one the bootstrap admin picked.
    tenant      text NOT NULL,
    -- NULL for the bootstrap admin token; otherwise the key, re-checked on every request.
    key_id      uuid REFERENCES api_keys (id) ON DELETE CASCADE,
    superuser   boolean NOT NULL DEFAULT false,
    -- A fingerprint of the admin token the session was opened with: another token ends it.
    admin_fingerprint  text,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- The sessions of an agent, newest first, in cursor pages.
CREATE INDEX sessions_agent ON sessions (tenant, agent_id, created_at DESC, session_id DESC);

-- Jobs of a tenant, or of one agent, newest first, in cursor pages; also the jobs-per-day chart.
CREATE INDEX jobs_tenant ON jobs (tenant, created_at DESC, id DESC);
CREATE INDEX jobs_agent ON jobs (tenant, agent_id, created_at DESC, id DESC);
