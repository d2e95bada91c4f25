"""The one settings object: the only place that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import limits
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from memcube.poisoning import DEFAULT_TRUST, ORIGINS


class Settings(BaseSettings):
    """Every knob MemCube has. Each field is read from `MEMCUBE_<NAME>` unless it names its own variable."""

    model_config = SettingsConfigDict(env_prefix="MEMCUBE_", extra="ignore", populate_by_name=True)

    # Processes and places
    home: Path = Field(default=Path("~/.memcube"), description="Data folder of the embedded stack.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    admin_token: str | None = Field(default=None, min_length=16,
                                    description="Bootstrap admin token (tenant `default`), 16 characters or more.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="External PostgreSQL (with pgvector); unset means the embedded one.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
        description="External Redis; unset means the embedded one.",
    )
    db_pool_min: int = Field(default=2, ge=1, description="Connections a process keeps open.")
    db_pool_max: int = Field(default=10, ge=1, description="Most connections a process opens.")
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a request waits for a database connection before a 503.")
    log_level: str = Field(default="info", description="Log level of every process.")

    # Embedding
    embedder: Literal["onnx", "torch", "local", "openai", "hash"] = Field(
        default="onnx",
        description="Which embedder: `onnx` (ONNX Runtime on a cached export), `torch` (sentence-transformers; "
                    "`local` is its former name), `openai`, `hash`.")
    embed_model: str | None = Field(
        default=None,
        description="Model: a sentence-transformers folder for `onnx` and `torch` (default: the bundled "
                    "all-MiniLM-L6-v2), a name for `openai`.",
    )
    embed_dim: int | None = Field(
        default=None, ge=8, le=16000, description="Vector size; `hash` defaults to 256, `openai` asks the endpoint."
    )
    embed_base_url: str | None = Field(
        default=None, description="OpenAI-compatible embeddings endpoint (default: MEMCUBE_LLM_BASE_URL)."
    )
    embed_batch_size: int | None = Field(
        default=None, ge=1, le=2048,
        description="Texts per embedder call (default: 16 for `onnx`, where smaller chunks ran faster; 64 otherwise).")
    torch_threads: int = Field(default=1, ge=1, description="Torch threads per process (1 is fastest on shared cores).")
    onnx_precision: Literal["int8", "fp32"] = Field(
        default="int8", description="`onnx`: int8 (dynamic, per-channel) or fp32 (the torch embedder's vectors).")
    embed_threads: int = Field(
        default=2, ge=1, le=64,
        description="`onnx`: chunks of one large batch embedded at once (each call runs on one thread).")
    model_cache: Path | None = Field(
        default=None, description="Folder of the ONNX exports (default: $MEMCUBE_HOME/models).")

    # LLM
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible LLM endpoint; unset means heuristics.")
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model name at that endpoint.")
    openai_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"),
        description="Key sent to the OpenAI-compatible endpoints.",
    )
    llm_timeout_seconds: float = Field(default=60.0, gt=0, description="Timeout of one LLM call.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed or malformed LLM answer.")

    # Limits
    max_content_chars: int = Field(default=65_536, ge=1, description="Longest content of one cube.")
    max_batch_items: int = Field(default=500, ge=1, description="Most items in one batch create.")
    max_k: int = Field(default=200, ge=1, description="Most hits one search returns.")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Largest request body.")

    # Rate limits per API key (per client address without a token), in `limits` notation: "600/minute",
    # "20/second;600/minute" (every part holds); an empty value turns that class off. Kept in Redis, so they
    # hold across API replicas.
    rate_limit_read: str = Field(default="3000/minute", description="GET requests under /v1 per key.")
    rate_limit_write: str = Field(default="1200/minute", description="Changes (POST, PUT, PATCH, DELETE) per key.")
    rate_limit_search: str = Field(default="1200/minute", description="POST /v1/search and /v1/context per key.")
    max_tags: int = Field(default=64, ge=0, description="Most tags on one cube.")
    max_links_page: int = Field(default=500, ge=1, description="Most links returned for one cube.")

    # Search
    exact_scan_max_rows: int = Field(
        default=5_000, ge=0, description="Scopes up to this many rows are searched exactly; larger ones by HNSW."
    )
    scope_count_ttl_seconds: float = Field(default=30.0, ge=0, description="How long a scope's size is cached.")
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000, description="HNSW ef_search for large scopes.")
    search_candidates: int = Field(default=50, ge=1, description="Candidates each retriever gives the fusion, at least.")
    rrf_k: int = Field(default=10, ge=1, description="Reciprocal rank fusion constant.")
    text_common_fraction: float = Field(
        default=0.5, gt=0, le=1,
        description="Query words found in more than this share of the searched scope's memories are left out of "
                    "full-text matching (BM25 gives such a word almost no weight); 1 keeps every word.")
    text_max_word_matches: int = Field(
        default=10_000, ge=1,
        description="A query word found in more memories of the scope than this is left out of full-text "
                    "matching too: every match is ranked, so this bounds the cost in very large scopes.")
    weight_recency: float = Field(default=0.05, ge=0, le=1, description="Weight of recency in the final score.")
    weight_importance: float = Field(default=0.05, ge=0, le=1, description="Weight of importance in the final score.")
    recency_half_life_days: float = Field(default=30.0, gt=0, description="Age at which recency counts half.")
    access_flush_seconds: float = Field(default=1.0, gt=0, description="How often recorded accesses are written.")

    # Virtual context
    working_max_messages: int = Field(default=50, ge=1, le=10_000,
                                      description="Most messages a session's working window in Redis holds.")
    working_max_tokens: int = Field(
        default=4000, ge=16,
        description="Most tokens a working window holds; a longer message or scratchpad is refused.")
    session_ttl_seconds: int = Field(
        default=86_400, ge=1, description="Idle time after which a session's window leaves Redis (messages stay).")
    max_session_messages: int = Field(default=100, ge=1, description="Most messages one append carries.")
    core_budget_tokens: int = Field(
        default=1000, ge=1, description="Token budget of the core tier of one scope (an agent, or one user of it).")
    core_block_max_tokens: int = Field(default=500, ge=1, description="Most tokens one labelled core block holds.")
    paging_weight_importance: float = Field(default=0.5, ge=0, le=1,
                                            description="Weight of importance in paging value.")
    paging_weight_recency: float = Field(default=0.3, ge=0, le=1,
                                         description="Weight of last-access recency in paging value.")
    paging_weight_frequency: float = Field(default=0.2, ge=0, le=1,
                                           description="Weight of access frequency in paging value.")
    paging_min_accesses: int = Field(default=3, ge=1,
                                     description="Accesses an archival cube needs before it may be paged into core.")
    paging_cooldown_seconds: float = Field(default=3600.0, ge=0,
                                           description="A cube paged out is not paged back in for this long.")
    paging_min_confidence: float = Field(
        default=0.8, ge=0, le=1,
        description="Confidence a memory consolidation derived needs before paging moves it into core.")
    context_recall_k: int = Field(
        default=100, ge=0, le=200,
        description="Most memories context assembly recalls by search (fewer when the budget is smaller).")
    context_min_similarity: float = Field(
        default=0.2, ge=-1, le=1,
        description="A recalled memory that shares no word with the query needs at least this cosine "
                    "similarity to it to take room in a context (depends on the embedder).")
    context_snippet_tokens: int = Field(
        default=40, ge=0,
        description="A recalled memory longer than this is shown in a context as its sentences that share the "
                    "most words with the query, up to this many tokens; 0 shows every memory whole.")
    context_lessons_k: int = Field(default=5, ge=0, le=100, description="Lessons context assembly considers.")
    context_working_share: float = Field(
        default=0.5, ge=0, le=1,
        description="Share of the budget left after core that the working window fills before recalled memories.")

    # Dashboard
    dashboard_session_seconds: int = Field(
        default=28_800, ge=60, le=30 * 86_400, description="How long a dashboard sign-in lasts.")
    dashboard_secret: str | None = Field(
        default=None, min_length=32,
        description="Key that signs dashboard cookies; unset: derived from the admin token, or else generated "
                    "and kept in $MEMCUBE_HOME/dashboard_secret.")

    # Lessons
    trajectory_max_steps: int = Field(default=100, ge=1, le=10_000, description="Most steps one trajectory holds.")
    trajectory_max_step_chars: int = Field(
        default=8000, ge=1, description="Most characters of one step (action, thought, observation and tool).")
    distill_engine: Literal["auto", "heuristic", "llm"] = Field(
        default="auto", description="`auto`: the LLM when MEMCUBE_LLM_BASE_URL is set, heuristics otherwise.")
    distill_after_trajectories: int = Field(
        default=1, ge=0, description="A scope with this many undistilled trajectories is distilled; 0: off.")
    distill_idle_seconds: float = Field(
        default=300.0, ge=0,
        description="A scope with undistilled trajectories and none newer than this is distilled; 0: off.")
    distill_every_seconds: float = Field(
        default=3600.0, ge=0, description="Beat distils every scope with pending trajectories this often; 0: off.")
    distill_batch_trajectories: int = Field(
        default=100, ge=1, le=5000, description="Trajectories one distillation transaction takes.")
    distill_group_similarity: float = Field(
        default=0.5, ge=0, le=1, description="Cosine similarity of tasks for trajectories to share an LLM call.")
    lesson_merge_similarity: float = Field(
        default=0.85, ge=0, le=1,
        description="Cosine similarity of `when_to_use` at which a candidate merges into a lesson.")
    lesson_min_uses: int = Field(default=3, ge=1, description="Uses a lesson is on probation for.")
    lesson_retire_below: float = Field(
        default=0.4, ge=0, le=1, description="Utility below which a lesson past probation retires.")

    # Workers and consolidation
    broker_url: str | None = Field(default=None, description="Celery broker (a Redis URL); unset means REDIS_URL.")
    worker_concurrency: int = Field(default=1, ge=1, le=64, description="Tasks one `memcube worker` runs at once.")
    worker_queue: str = Field(default="memcube", min_length=1, description="Broker queue the tasks go through.")
    broker_visibility_timeout_seconds: float = Field(
        default=300.0, ge=1, description="A task taken by a worker that died is delivered again after this long.")
    job_lease_seconds: float = Field(
        default=30.0, ge=1, description="Lease of a running job, renewed by its worker; an expired one is taken over.")
    job_max_attempts: int = Field(default=5, ge=1, description="Attempts after which a job that keeps dying fails.")
    outbox_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the relay looks for unsent outbox rows when nothing woke it.")
    scan_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often beat looks for idle sessions and stalled jobs.")
    consolidate_engine: Literal["auto", "heuristic", "llm"] = Field(
        default="auto", description="`auto`: the LLM when MEMCUBE_LLM_BASE_URL is set, heuristics otherwise.")
    consolidate_idle_seconds: float = Field(
        default=600.0, ge=0,
        description="A session with unconsolidated episodes and none newer than this is consolidated; 0: off.")
    consolidate_after_episodes: int = Field(
        default=50, ge=0, description="A scope with this many unconsolidated episodes is consolidated; 0: off.")
    consolidate_every_seconds: float = Field(
        default=3600.0, ge=0, description="Beat consolidates every scope with pending episodes this often; 0: off.")
    consolidate_batch_episodes: int = Field(
        default=200, ge=1, le=5000, description="Episodes one consolidation transaction takes.")
    consolidate_topic_similarity: float = Field(
        default=0.5, ge=0, le=1, description="Cosine similarity an episode needs to join a topic group.")
    consolidate_group_max_episodes: int = Field(
        default=20, ge=1, le=200, description="Most episodes in one topic group (one LLM call).")
    consolidate_duplicate_similarity: float = Field(
        default=0.9, ge=0, le=1, description="Cosine similarity at which a candidate restates a known fact.")
    consolidate_related_similarity: float = Field(
        default=0.6, ge=0, le=1, description="Cosine similarity at which a new fact is linked to a known one.")
    page_every_seconds: float = Field(
        default=300.0, ge=0, description="Beat pages every scope that has a core tier this often; 0: off.")

    # Poisoning defence (memcube/poisoning.py)
    poison_screen: bool = Field(
        default=True,
        description="Score what API writes and session messages store for instructions aimed at the agent; "
                    "false stores everything active, unscored.")
    poison_threshold: float = Field(
        default=1.0, ge=0,
        description="Score at which a write is stored `quarantined`, for a fully trusted origin; an origin's "
                    "trust (MEMCUBE_POISON_TRUST) scales it down.")
    poison_trust: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_TRUST),
        description="Trust of each origin (JSON object, 0..1): the threshold is multiplied by it; origins left "
                    "out keep their default trust.")
    poison_consensus_min: int = Field(
        default=1, ge=0,
        description="Consolidation quarantines a fact that contradicts one with at least this many memories "
                    "from origins more trusted than every memory behind the new one; 0: off.")

    @field_validator("poison_trust")
    @classmethod
    def _trust_table(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(ORIGINS))
        if unknown:
            raise ValueError(f"unknown origins {unknown}; the origins are {', '.join(ORIGINS)}")
        if any(not 0 <= trust <= 1 for trust in value.values()):
            raise ValueError("each origin's trust is between 0 and 1")
        return value

    # Clients and portability
    url: str | None = Field(
        default=None,
        description="The MemCube API that `memcube mcp` calls (and the SDK, which reads the same variable); "
                    "unset: http://127.0.0.1:MEMCUBE_PORT.")
    api_key: str | None = Field(
        default=None, description="The key `memcube mcp` calls the API with over stdio (HTTP clients send their own).")
    mcp_agent_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="The agent MCP tools act for when a call names none.")
    mcp_host: str = Field(default="127.0.0.1", description="Address `memcube mcp --transport http` listens on.")
    mcp_port: int = Field(default=8001, ge=1, le=65535, description="Port `memcube mcp --transport http` listens on.")

    @field_validator("rate_limit_read", "rate_limit_write", "rate_limit_search")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip():
            try:
                limits.parse_many(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a rate limit such as \"600/minute\" or "
                                 "\"20/second;600/minute\" (empty turns it off)") from exc
        return value.strip()

    def api_url(self) -> str:
        """Return MEMCUBE_URL, or this host's API on MEMCUBE_PORT."""
        return (self.url or f"http://127.0.0.1:{self.port}").rstrip("/")

    def resolved_home(self) -> Path:
        """Return the data folder with `~` expanded."""
        return self.home.expanduser().resolve()

    def resolved_model_cache(self) -> Path:
        """Return the folder of the ONNX exports with `~` expanded."""
        return (self.model_cache or self.home / "models").expanduser().resolve()


def env_name(field_name: str) -> str:
    """Return the environment variable that sets a settings field."""
    field = Settings.model_fields[field_name]
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return f"MEMCUBE_{field_name.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
