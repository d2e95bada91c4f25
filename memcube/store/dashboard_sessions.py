"""SQL for `dashboard_sessions`: who is signed in to the dashboard, acting in which tenant, until when.

Rows are found by the SHA-256 of the session id the browser holds. Functions never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

SQL_INSERT = (
    "INSERT INTO dashboard_sessions (id_hash, tenant, key_id, superuser, admin_fingerprint, csrf, expires_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
# A live session, with its key as it is now (NULL name and scopes when the key was revoked).
SQL_FIND = (
    "SELECT s.tenant, s.key_id, s.superuser, s.admin_fingerprint, s.csrf, s.created_at, s.expires_at, "
    "k.tenant AS key_tenant, k.name AS key_name, k.scopes AS key_scopes, k.revoked_at AS key_revoked_at "
    "FROM dashboard_sessions s LEFT JOIN api_keys k ON k.id = s.key_id "
    "WHERE s.id_hash = %s AND s.expires_at > now()"
)
SQL_DELETE = "DELETE FROM dashboard_sessions WHERE id_hash = %s"
SQL_DELETE_EXPIRED = "DELETE FROM dashboard_sessions WHERE expires_at <= now()"
SQL_SET_TENANT = "UPDATE dashboard_sessions SET tenant = %s WHERE id_hash = %s AND superuser"


def insert_session(conn: psycopg.Connection, *, id_hash: bytes, tenant: str, key_id: UUID | None, superuser: bool,
                   admin_fingerprint: str | None, csrf: str, expires_at: datetime) -> None:
    """Store a new session."""
    conn.execute(SQL_INSERT, (id_hash, tenant, key_id, superuser, admin_fingerprint, csrf, expires_at))


def find_session(conn: psycopg.Connection, *, id_hash: bytes) -> dict[str, Any] | None:
    """Return the unexpired session with this hash and its key's current state, or None."""
    return conn.execute(SQL_FIND, (id_hash,)).fetchone()


def delete_session(conn: psycopg.Connection, *, id_hash: bytes) -> None:
    """Remove a session (signing out); removing one that is gone does nothing."""
    conn.execute(SQL_DELETE, (id_hash,))


def delete_expired(conn: psycopg.Connection) -> int:
    """Remove expired sessions; return how many."""
    return conn.execute(SQL_DELETE_EXPIRED).rowcount


def set_tenant(conn: psycopg.Connection, *, id_hash: bytes, tenant: str) -> bool:
    """Make a bootstrap-admin session act in another tenant; False when there is no such session."""
    return conn.execute(SQL_SET_TENANT, (tenant, id_hash)).rowcount == 1
