"""SQL for `memcube_links`: typed edges between cubes of one tenant."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

LINK_COLUMNS = "id, source_id, target_id, type, metadata, provenance, created_at"

SQL_INSERT = (
    "INSERT INTO memcube_links (id, tenant, source_id, target_id, type, metadata, provenance) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (source_id, target_id, type) DO NOTHING "
    "RETURNING " + LINK_COLUMNS
)
SQL_GET_PAIR = (
    "SELECT " + LINK_COLUMNS + " FROM memcube_links WHERE source_id = %s AND target_id = %s AND type = %s"
)
SQL_LIST = (
    "SELECT " + LINK_COLUMNS + " FROM memcube_links WHERE tenant = %s AND (source_id = %s OR target_id = %s) "
    "ORDER BY created_at, id LIMIT %s"
)


def insert_link(conn: psycopg.Connection, *, tenant: str, source_id: UUID, target_id: UUID, type: str,
                metadata: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """Insert a link, or return the existing one of the same pair and type."""
    row = conn.execute(SQL_INSERT, (uuid.uuid4(), tenant, source_id, target_id, type, Jsonb(metadata),
                                    Jsonb(provenance))).fetchone()
    if row is None:
        row = conn.execute(SQL_GET_PAIR, (source_id, target_id, type)).fetchone()
    return row


def list_links(conn: psycopg.Connection, *, tenant: str, cube_id: UUID, limit: int) -> list[dict[str, Any]]:
    """Return the links from and to a cube, oldest first."""
    return conn.execute(SQL_LIST, (tenant, cube_id, cube_id, limit)).fetchall()
