-- The HNSW index holds only the vectors of large scopes. Search reads it only for a scope (tenant, agent) of
-- more than MEMCUBE_EXACT_SCAN_MAX_ROWS memories (smaller ones are searched exactly, memcube/search.py), yet
-- every insert into it cost 2-14 ms a row, most of an insert. Now a row enters the index only when its
-- scope is indexed (`ann`), and a scope becomes indexed when it outgrows the exact plan
-- (memcube/vector_index.py): its state goes from `filling` (new rows enter the index; a worker sweeps the
-- older ones in) to `ready` (every vector of the scope is in the index: search may use it).

ALTER TABLE memcubes ADD COLUMN ann boolean NOT NULL DEFAULT false;

CREATE TABLE vector_index_scopes (
    tenant      text NOT NULL,
    agent_id    text NOT NULL,
    state       text NOT NULL CHECK (state IN ('filling', 'ready')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    ready_at    timestamptz,
    PRIMARY KEY (tenant, agent_id)
);
CREATE INDEX vector_index_scopes_filling ON vector_index_scopes (created_at) WHERE state = 'filling';

-- The lock a writer of a scope holds (shared) until it commits, and the sweep takes (exclusive) once, after the
-- scope turned `filling`: the sweep starts only when every writer that could have missed the new state is done.
-- Scopes share 128 locks (the two-key form, class 8008): a transaction writing to thousands of agents (an
-- import) holds at most 128, never enough to exhaust the lock table; two scopes that share one only make a
-- sweep wait a little longer.
CREATE FUNCTION memcube_scope_lock_key(tenant text, agent_id text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtext(tenant || chr(31) || agent_id) & 127
$$;

-- A row enters the index when its scope is indexed: on insert, and when a change moves it to another agent.
CREATE FUNCTION memcube_set_ann() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8008, memcube_scope_lock_key(NEW.tenant, NEW.agent_id));
    NEW.ann := EXISTS (SELECT 1 FROM vector_index_scopes s
                        WHERE s.tenant = NEW.tenant AND s.agent_id = NEW.agent_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER memcubes_set_ann BEFORE INSERT OR UPDATE OF tenant, agent_id ON memcubes
    FOR EACH ROW EXECUTE FUNCTION memcube_set_ann();

-- The index over the indexed scopes' rows only (search's hnsw plan names `ann` in its filter to match it).
-- `wanted` is the whole definition's tail, so an index built by an older release (over every row) is rebuilt.
CREATE OR REPLACE FUNCTION memcube_ensure_vector_index(dim integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    wanted text := format('((embedding)::vector(%s)) vector_cosine_ops) WHERE ((embedding IS NOT NULL) AND ann)', dim);
    current_def text;
BEGIN
    IF dim IS NULL THEN
        EXECUTE 'DROP INDEX IF EXISTS memcubes_embedding_hnsw';
        RETURN true;
    END IF;
    SELECT pg_get_indexdef(i.indexrelid) INTO current_def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname = 'memcubes_embedding_hnsw';
    IF current_def IS NOT NULL AND position(wanted IN current_def) > 0 THEN
        RETURN false;
    END IF;
    EXECUTE 'DROP INDEX IF EXISTS memcubes_embedding_hnsw';
    EXECUTE format(
        'CREATE INDEX memcubes_embedding_hnsw ON memcubes USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
        'WHERE embedding IS NOT NULL AND ann', dim);
    RETURN true;
END
$$;
