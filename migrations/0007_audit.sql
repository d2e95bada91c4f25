-- The audit trail: one row per change made through the API or the dashboard (writes, erases, key changes,
-- dashboard actions), whether it was carried out or refused. Rows hold who, what and when, never content, so
-- erasing a memory (the right to be forgotten) leaves nothing of it here but its id.

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The tenant acted in; NULL when the caller could not be authenticated.
    tenant      text,
    -- Who: the key (NULL for the bootstrap admin token and for unauthenticated callers) and its name
    -- at the time, and the actor written into versions (`key:<id>`, `admin`, `dashboard:<...>`).
    key_id      uuid,
    key_name    text,
    actor       text,
    request_id  text NOT NULL,
    method      text NOT NULL,
    -- The route template (`/v1/memories/{cube_id}`), and the path as called.
    route       text NOT NULL,
    path        text NOT NULL,
    status      integer NOT NULL,
    -- `ok` (carried out, committed with the change itself) or `refused` (a 4xx or 5xx: nothing changed).
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'refused')),
    -- The versions the change wrote: [{"id": cube id, "version": n}, ...].
    cubes       jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, id DESC);
CREATE INDEX audit_log_cubes ON audit_log USING gin (cubes jsonb_path_ops);

-- Append-only: no row is ever changed or removed, not even by the service itself.
CREATE FUNCTION memcube_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION memcube_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION memcube_audit_append_only();
