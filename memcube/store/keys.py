"""SQL for `api_keys`. Only hashes of tokens are stored."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

KEY_COLUMNS = "id, tenant, name, scopes, token_prefix, created_at, revoked_at"

SQL_INSERT = (
    "INSERT INTO api_keys (id, tenant, name, scopes, token_hash, token_prefix) VALUES (%s, %s, %s, %s, %s, %s) "
    "RETURNING " + KEY_COLUMNS
)
SQL_BY_HASH = "SELECT " + KEY_COLUMNS + " FROM api_keys WHERE token_hash = %s AND revoked_at IS NULL"
SQL_BY_ID = "SELECT " + KEY_COLUMNS + " FROM api_keys WHERE id = %s AND revoked_at IS NULL"
SQL_LIST = "SELECT " + KEY_COLUMNS + " FROM api_keys WHERE (%s::text IS NULL OR tenant = %s) ORDER BY created_at, id"
SQL_REVOKE = (
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND (%s::text IS NULL OR tenant = %s) "
    "RETURNING " + KEY_COLUMNS
)


def insert_key(conn: psycopg.Connection, *, key_id: UUID, tenant: str, name: str, scopes: list[str],
               token_hash: bytes, token_prefix: str) -> dict[str, Any]:
    """Store a new key and return it (without the token)."""
    return conn.execute(SQL_INSERT, (key_id, tenant, name, scopes, token_hash, token_prefix)).fetchone()


def find_key_by_hash(conn: psycopg.Connection, token_hash: bytes) -> dict[str, Any] | None:
    """Return the live key with this token hash, or None."""
    return conn.execute(SQL_BY_HASH, (token_hash,)).fetchone()


def find_key(conn: psycopg.Connection, key_id: UUID) -> dict[str, Any] | None:
    """Return the live key with this id, or None (unknown or revoked)."""
    return conn.execute(SQL_BY_ID, (key_id,)).fetchone()


def list_keys(conn: psycopg.Connection, *, tenant: str | None) -> list[dict[str, Any]]:
    """Return the keys of one tenant, or of all tenants when `tenant` is None."""
    return conn.execute(SQL_LIST, (tenant, tenant)).fetchall()


def revoke_key(conn: psycopg.Connection, *, key_id: UUID, tenant: str | None) -> dict[str, Any] | None:
    """Revoke a key (idempotent) and return it, or None when it is not visible to the caller."""
    return conn.execute(SQL_REVOKE, (key_id, tenant, tenant)).fetchone()
