"""The one settings object: the only place that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob MemCube has. Each field is read from `MEMCUBE_<NAME>` unless it names its own variable."""

    model_config = SettingsConfigDict(env_prefix="MEMCUBE_", extra="ignore", populate_by_name=True)

    # Processes and places
    home: Path = Field(default=Path("~/.memcube"), description="Data folder of the embedded stack.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    admin_token: str | None = Field(default=None, description="Bootstrap admin token (tenant `default`).")
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
    log_level: str = Field(default="info", description="Log level of every process.")

    # Embedding
    embedder: Literal["local", "openai", "hash"] = Field(default="local", description="Which embedder.")
    embed_model: str | None = Field(
        default=None,
        description="Model: a folder for `local` (default: the bundled all-MiniLM-L6-v2), a name for `openai`.",
    )
    embed_dim: int | None = Field(
        default=None, ge=8, le=16000, description="Vector size; `hash` defaults to 256, `openai` asks the endpoint."
    )
    embed_base_url: str | None = Field(
        default=None, description="OpenAI-compatible embeddings endpoint (default: MEMCUBE_LLM_BASE_URL)."
    )
    embed_batch_size: int = Field(default=64, ge=1, le=2048, description="Texts per embedder call.")
    torch_threads: int = Field(default=1, ge=1, description="Torch threads per process (1 is fastest on shared cores).")

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
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Largest request body.")
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
    weight_recency: float = Field(default=0.05, ge=0, le=1, description="Weight of recency in the final score.")
    weight_importance: float = Field(default=0.05, ge=0, le=1, description="Weight of importance in the final score.")
    recency_half_life_days: float = Field(default=30.0, gt=0, description="Age at which recency counts half.")
    access_flush_seconds: float = Field(default=1.0, gt=0, description="How often recorded accesses are written.")

    def resolved_home(self) -> Path:
        """Return the data folder with `~` expanded."""
        return self.home.expanduser().resolve()


def env_name(field_name: str) -> str:
    """Return the environment variable that sets a settings field."""
    field = Settings.model_fields[field_name]
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return f"MEMCUBE_{field_name.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
