"""Dashboard sign-in: sessions opened with the admin token or an `admin`-scope key, held by the browser as a signed
session id, and the CSRF token each change must carry.

The browser's cookie is `<session id>.<HMAC-SHA256 of it>`; the database keeps only the id's SHA-256, so neither a
forged cookie nor a copy of the table opens a session. Every request re-reads the session with its key: signing out
(the row is deleted), expiry, revoking the key, taking its `admin` scope away or changing the admin token ends it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from memcube.auth import ALL_SCOPES, authenticate, require
from memcube.config import Settings
from memcube.errors import ConfigError, Forbidden, InvalidInput
from memcube.models import DashboardSession, Principal, check_text
from memcube.store import dashboard_sessions as store
from memcube.store import keys as key_store

SECRET_FILE = "dashboard_secret"
_DERIVE = b"memcube dashboard cookie signing v1"


def signing_key(settings: Settings) -> bytes:
    """Return the key that signs dashboard cookies: MEMCUBE_DASHBOARD_SECRET; else derived from the admin token
    (every process of a deployment shares it, and a new admin token ends every session); else a random key kept
    in $MEMCUBE_HOME/dashboard_secret (made on first use). Raises ConfigError when that file cannot be written."""
    if settings.dashboard_secret:
        return settings.dashboard_secret.encode()
    if settings.admin_token:
        return hmac.new(settings.admin_token.encode(), _DERIVE, hashlib.sha256).digest()
    path = settings.resolved_home() / SECRET_FILE
    try:
        if not path.exists():
            _write_secret(path)
        return path.read_text().strip().encode()
    except OSError as exc:
        raise ConfigError(f"cannot keep the dashboard's signing key in {path} ({exc}); "
                          "set MEMCUBE_DASHBOARD_SECRET") from exc


def _write_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(48) + "\n")


def _sign(key: bytes, session_id: str) -> str:
    digest = hmac.new(key, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _id_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def _fingerprint(admin_token: str | None) -> str | None:
    return None if not admin_token else hashlib.sha256(b"fingerprint:" + admin_token.encode()).hexdigest()[:32]


def _verified_id(cookie: str | None, key: bytes) -> str | None:
    """The session id of a cookie whose signature holds, else None."""
    if not cookie or len(cookie) > 200:
        return None
    session_id, _, signature = cookie.partition(".")
    if not session_id or not hmac.compare_digest(signature.encode(), _sign(key, session_id).encode()):
        return None
    return session_id


def sign_in(conn: psycopg.Connection, *, token: str, settings: Settings, key: bytes,
            lifetime_seconds: float | None = None) -> tuple[str, DashboardSession]:
    """Open a session for the admin token or an `admin`-scope key; return (cookie value, session).

    Raises Unauthorized for a wrong, unknown or revoked token, Forbidden for a key without the `admin` scope.
    """
    principal = authenticate(conn, token.strip(), admin_token=settings.admin_token)
    require(principal, "admin")
    store.delete_expired(conn)
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    lifetime = settings.dashboard_session_seconds if lifetime_seconds is None else lifetime_seconds
    csrf = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=lifetime)
    store.insert_session(conn, id_hash=_id_hash(session_id), tenant=principal.tenant, key_id=principal.key_id,
                         superuser=principal.superuser,
                         admin_fingerprint=_fingerprint(settings.admin_token) if principal.superuser else None,
                         csrf=csrf, expires_at=expires_at)
    key_row = None if principal.key_id is None else key_store.find_key(conn, principal.key_id)
    session = DashboardSession(principal=principal, key_name=key_row["name"] if key_row else None, csrf=csrf,
                               created_at=now, expires_at=expires_at)
    return f"{session_id}.{_sign(key, session_id)}", session


def open_session(conn: psycopg.Connection, *, cookie: str | None, settings: Settings,
                 key: bytes) -> DashboardSession | None:
    """Return the session a cookie holds, or None when it is missing, forged, expired or signed out, or when its
    key was revoked or lost the `admin` scope, or the admin token changed since."""
    session_id = _verified_id(cookie, key)
    if session_id is None:
        return None
    row = store.find_session(conn, id_hash=_id_hash(session_id))
    if row is None:
        return None
    if row["superuser"]:
        if row["admin_fingerprint"] != _fingerprint(settings.admin_token):
            return None
        principal = Principal(key_id=None, tenant=row["tenant"], scopes=ALL_SCOPES, superuser=True)
    else:
        if row["key_scopes"] is None or row["key_revoked_at"] is not None or "admin" not in row["key_scopes"]:
            return None
        principal = Principal(key_id=row["key_id"], tenant=row["key_tenant"], scopes=frozenset(row["key_scopes"]),
                              key_name=row["key_name"])
    return DashboardSession(principal=principal, key_name=row["key_name"], csrf=row["csrf"],
                            created_at=row["created_at"], expires_at=row["expires_at"])


def sign_out(conn: psycopg.Connection, *, cookie: str | None, key: bytes) -> None:
    """End the session a cookie holds (nothing happens for a cookie that holds none)."""
    session_id = _verified_id(cookie, key)
    if session_id is not None:
        store.delete_session(conn, id_hash=_id_hash(session_id))


def switch_tenant(conn: psycopg.Connection, *, cookie: str | None, key: bytes, session: DashboardSession,
                  tenant: str) -> None:
    """Make the bootstrap admin's session act in `tenant`; raises Forbidden for a tenant admin (who sees only its
    own tenant), InvalidInput for a bad tenant name."""
    if not session.principal.superuser:
        raise Forbidden("an admin key acts only in its own tenant")
    tenant = tenant.strip()
    if not tenant or len(tenant) > 256:
        raise InvalidInput("tenant must be 1 to 256 characters")
    try:
        check_text(tenant)
    except ValueError as exc:
        raise InvalidInput(f"tenant: {exc}") from exc
    session_id = _verified_id(cookie, key)
    if session_id is None or not store.set_tenant(conn, id_hash=_id_hash(session_id), tenant=tenant):
        raise Forbidden("the session has ended; sign in again")


def check_csrf(session: DashboardSession, token: str | None) -> None:
    """Raise Forbidden unless `token` is the session's CSRF token."""
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong; nothing was changed. Reload the page and try "
                        "again")
