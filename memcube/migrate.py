"""The migration runner: ordered SQL files, applied once each under an advisory lock.

The files are the package data of `memcube.migrations` (the repository's top-level `migrations/`, mapped
into the package by pyproject.toml), read through importlib.resources: an installed wheel carries them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

from memcube.errors import MigrationError

log = logging.getLogger(__name__)

# Any constant works as long as every process uses the same one.
LOCK_KEY = 7_402_311_977

SQL_LOCK = "SELECT pg_advisory_lock(%s)"
SQL_UNLOCK = "SELECT pg_advisory_unlock(%s)"
SQL_HAS_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"
SQL_APPLIED = "SELECT name, checksum FROM schema_migrations"
SQL_RECORD = "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)"


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Traversable:
    """Return where the migration files are: the `memcube.migrations` package, in a checkout or a wheel."""
    return resources.files("memcube.migrations")


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """Return the migration files in name order; raises MigrationError when there are none."""
    directory = directory or migrations_dir()
    files = sorted((p for p in directory.iterdir() if p.name.endswith(".sql") and p.is_file()), key=lambda p: p.name)
    if not files:
        raise MigrationError(f"no migration files in {directory}")
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in files]


def apply_migrations(conn: psycopg.Connection, directory: Traversable | None = None) -> list[str]:
    """Apply every pending migration and return their names.

    The connection must be in autocommit mode; each file runs in its own transaction.
    Raises MigrationError when an applied file was edited since.
    """
    if not conn.autocommit:
        raise MigrationError("apply_migrations needs an autocommit connection")
    migrations = load_migrations(directory)
    conn.execute(SQL_LOCK, (LOCK_KEY,))
    try:
        applied = _applied(conn)
        _check_checksums(migrations, applied)
        done = []
        for migration in migrations:
            if migration.name in applied:
                continue
            log.info("applying migration %s", migration.name)
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(SQL_RECORD, (migration.name, migration.checksum))
            done.append(migration.name)
        return done
    finally:
        conn.execute(SQL_UNLOCK, (LOCK_KEY,))


def pending_migrations(conn: psycopg.Connection, directory: Traversable | None = None) -> list[str]:
    """Return the names of migrations not applied yet; raises MigrationError on an edited file."""
    migrations = load_migrations(directory)
    applied = _applied(conn)
    _check_checksums(migrations, applied)
    return [m.name for m in migrations if m.name not in applied]


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    row = conn.execute(SQL_HAS_TABLE).fetchone()
    present = row["present"] if isinstance(row, dict) else row[0]
    if not present:
        return {}
    rows = conn.execute(SQL_APPLIED).fetchall()
    return {(r["name"] if isinstance(r, dict) else r[0]): (r["checksum"] if isinstance(r, dict) else r[1]) for r in rows}


def _check_checksums(migrations: list[Migration], applied: dict[str, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.name)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} was edited after it was applied "
                f"(recorded checksum {recorded[:12]}, file now {migration.checksum[:12]}); "
                "restore the file and put the change in a new migration",
                details={"migration": migration.name},
            )
