-- The MemCube store: current rows, immutable versions, typed links, API keys,
-- and the embedding space the vectors were made in.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE memcubes (
    id                uuid PRIMARY KEY,
    tenant            text NOT NULL,
    agent_id          text NOT NULL,
    user_id           text,
    session_id        text,
    kind              text NOT NULL CHECK (kind IN ('episodic', 'semantic', 'procedural', 'summary', 'core', 'artifact')),
    tier              text NOT NULL DEFAULT 'archival' CHECK (tier IN ('core', 'archival')),
    content           text NOT NULL,
    data              jsonb,
    tags              text[] NOT NULL DEFAULT '{}',
    metadata          jsonb NOT NULL DEFAULT '{}',
    artifact          jsonb,
    occurred_at       timestamptz,
    valid_from        timestamptz,
    valid_to          timestamptz,
    importance        real NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    confidence        real NOT NULL DEFAULT 1.0 CHECK (confidence BETWEEN 0 AND 1),
    access_count      bigint NOT NULL DEFAULT 0,
    last_accessed_at  timestamptz,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'superseded', 'forgotten', 'quarantined')),
    superseded_by     uuid,
    version           integer NOT NULL DEFAULT 1,
    provenance        jsonb NOT NULL,
    -- Untyped so that a change of embedder needs no ALTER TABLE; the HNSW index
    -- is an expression index on embedding::vector(dim) (see memcube_ensure_vector_index).
    embedding         vector,
    tsv               tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The scope index: listing, scope sizes and the exact vector scan all walk it.
CREATE INDEX memcubes_scope ON memcubes (tenant, agent_id, created_at DESC, id DESC);
CREATE INDEX memcubes_scope_user ON memcubes (tenant, agent_id, user_id);
CREATE INDEX memcubes_tsv ON memcubes USING gin (tsv);
CREATE INDEX memcubes_tags ON memcubes USING gin (tags);

CREATE TABLE memcube_versions (
    cube_id        uuid NOT NULL REFERENCES memcubes (id) ON DELETE CASCADE,
    version        integer NOT NULL,
    tenant         text NOT NULL,
    agent_id       text NOT NULL,
    user_id        text,
    session_id     text,
    kind           text NOT NULL,
    tier           text NOT NULL,
    content        text NOT NULL,
    data           jsonb,
    tags           text[] NOT NULL,
    metadata       jsonb NOT NULL,
    artifact       jsonb,
    occurred_at    timestamptz,
    valid_from     timestamptz,
    valid_to       timestamptz,
    importance     real NOT NULL,
    confidence     real NOT NULL,
    status         text NOT NULL,
    superseded_by  uuid,
    provenance     jsonb NOT NULL,
    -- Transaction time, like created_at and updated_at: one clock for every record-time column.
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cube_id, version)
);

CREATE TABLE memcube_links (
    id          uuid PRIMARY KEY,
    tenant      text NOT NULL,
    source_id   uuid NOT NULL REFERENCES memcubes (id) ON DELETE CASCADE,
    target_id   uuid NOT NULL REFERENCES memcubes (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('related', 'supports', 'contradicts', 'part_of', 'derived_from')),
    metadata    jsonb NOT NULL DEFAULT '{}',
    provenance  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, target_id, type)
);
CREATE INDEX memcube_links_target ON memcube_links (target_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant        text NOT NULL,
    name          text NOT NULL DEFAULT '',
    scopes        text[] NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    token_prefix  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

-- One row: the embedder the stored vectors came from.
CREATE TABLE embedding_space (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model       text NOT NULL,
    dim         integer NOT NULL CHECK (dim > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The HNSW index depends on the vector size, which only the configured
-- embedder knows; start-up and `memcube reembed` call this to (re)build it.
-- A NULL dim drops the index (while vectors of two sizes coexist).
CREATE FUNCTION memcube_ensure_vector_index(dim integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    wanted text := format('(embedding)::vector(%s)', dim);
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
        'CREATE INDEX memcubes_embedding_hnsw ON memcubes USING hnsw ((embedding::vector(%s)) vector_cosine_ops) WHERE embedding IS NOT NULL',
        dim);
    RETURN true;
END
$$;
