"""API keys: issue, verify, revoke. Tokens are random and shown once; only their SHA-256 is stored, with the
token's public part (`mc_` and a key label that is not part of the secret) to tell keys apart."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any
from uuid import UUID

import psycopg

from memcube.errors import Forbidden, NotFound, Unauthorized
from memcube.models import ApiKeyCreate, Principal
from memcube.store import discovery as discovery_store
from memcube.store import keys as key_store

TOKEN_PREFIX = "mc_"
ALL_SCOPES = frozenset({"read", "write", "admin"})
BOOTSTRAP_TENANT = "default"


PUBLIC_CHARS = len(TOKEN_PREFIX) + 8


def new_token() -> str:
    """Return a fresh token, `mc_<label>_<secret>`: a public 8-character label (stored, shown in key lists) and
    256 random bits that are stored only as part of the token's hash."""
    return f"{TOKEN_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def public_part(token: str) -> str:
    """The part of a token that may be stored and shown: `mc_` and its label, never a character of the secret."""
    return token[:PUBLIC_CHARS]


def hash_token(token: str) -> bytes:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).digest()


def require_token(token: str | None) -> str:
    """Return the token; raises Unauthorized when there is none."""
    if not token:
        raise Unauthorized("missing credentials: send `Authorization: Bearer <token>`")
    return token


def authenticate(conn: psycopg.Connection, token: str | None, *, admin_token: str | None) -> Principal:
    """Return who the token belongs to; raises Unauthorized for a missing, unknown or revoked token."""
    token = require_token(token)
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(key_id=None, tenant=BOOTSTRAP_TENANT, scopes=ALL_SCOPES, superuser=True)
    row = key_store.find_key_by_hash(conn, hash_token(token))
    if row is None:
        raise Unauthorized("invalid or revoked token")
    return Principal(key_id=row["id"], tenant=row["tenant"], scopes=frozenset(row["scopes"]), key_name=row["name"])


class KeyCache:
    """Who recently-seen tokens belonged to, for a cheap check *before* expensive work (embedding a write).

    Never the last word: the work's own transaction authenticates again (`authenticate`), so a key revoked a
    moment ago costs at most one wasted embedding, never a write; revocation stays immediate.
    """

    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        """Return the principal the token had when last looked up, if that was within the ttl."""
        entry = self._entries.get(hash_token(token))
        if entry is None or time.monotonic() - entry[1] > self._ttl:
            return None
        return entry[0]

    def put(self, token: str, principal: Principal) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[hash_token(token)] = (principal, time.monotonic())


def require(principal: Principal, scope: str) -> None:
    """Raise Forbidden unless the principal holds the scope."""
    if scope not in principal.scopes:
        raise Forbidden(f"this key lacks the `{scope}` scope", details={"needed": scope})


def _managed_tenant(principal: Principal, tenant: str | None) -> str | None:
    """The tenant whose keys the principal may manage (None: all of them)."""
    require(principal, "admin")
    if principal.superuser:
        return tenant
    if tenant is not None and tenant != principal.tenant:
        raise Forbidden("an admin key manages only the keys of its own tenant")
    return principal.tenant


def create_key(conn: psycopg.Connection, principal: Principal, body: ApiKeyCreate) -> dict[str, Any]:
    """Issue a key and return it with its token (the only time the token is shown)."""
    tenant = _managed_tenant(principal, body.tenant)
    token = new_token()
    row = key_store.insert_key(conn, key_id=uuid.uuid4(), tenant=tenant or body.tenant, name=body.name,
                               scopes=sorted(set(body.scopes)), token_hash=hash_token(token),
                               token_prefix=public_part(token))
    return {**row, "token": token}


def list_keys(conn: psycopg.Connection, principal: Principal, tenant: str | None = None) -> list[dict[str, Any]]:
    """Return the keys the principal may see (never their tokens)."""
    return key_store.list_keys(conn, tenant=_managed_tenant(principal, tenant))


def get_key(conn: psycopg.Connection, principal: Principal, key_id: UUID, tenant: str | None = None) -> dict[str, Any]:
    """Return a live key the principal may manage (of `tenant`, when given; never its token); raises NotFound."""
    managed = _managed_tenant(principal, tenant)
    row = key_store.find_key(conn, key_id)
    if row is None or (managed is not None and row["tenant"] != managed):
        raise NotFound(f"key {key_id} not found")
    return row


def revoke_key(conn: psycopg.Connection, principal: Principal, key_id: UUID,
               tenant: str | None = None) -> dict[str, Any]:
    """Revoke a key; raises NotFound when it is not one the principal may manage (of `tenant`, when given)."""
    row = key_store.revoke_key(conn, key_id=key_id, tenant=_managed_tenant(principal, tenant))
    if row is None:
        raise NotFound(f"key {key_id} not found")
    return row


def list_tenants(conn: psycopg.Connection, principal: Principal, limit: int = 1000) -> list[str]:
    """Return the tenants that hold memories or keys (up to `limit`, in order); raises Forbidden unless the
    principal is the bootstrap admin, the only one who acts across tenants."""
    if not principal.superuser:
        raise Forbidden("an admin key sees only its own tenant")
    return discovery_store.list_tenants(conn, limit=limit)
