"""The migration runner: applies in order, re-runs as a no-op, refuses edited files, is safe in parallel."""

import threading
from pathlib import Path

import psycopg
import pytest

from memcube.db import connect
from memcube.errors import MigrationError
from memcube.migrate import apply_migrations, pending_migrations


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_real_migrations_apply_once_then_nothing(scratch_url):
    with connect(scratch_url, autocommit=True) as conn:
        first = apply_migrations(conn)
        assert first[0] == "0000_schema_migrations.sql" and "0001_memcubes.sql" in first
        assert apply_migrations(conn) == []
        assert pending_migrations(conn) == []
        assert conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone()["n"] == len(first)


def test_edited_applied_file_stops_with_a_clear_message(scratch_url, tmp_path):
    real = Path(__file__).resolve().parent.parent / "migrations" / "0000_schema_migrations.sql"
    write(tmp_path, real.name, real.read_text())
    write(tmp_path, "0001_t.sql", "CREATE TABLE t (a int);")
    with connect(scratch_url, autocommit=True) as conn:
        assert apply_migrations(conn, tmp_path) == [real.name, "0001_t.sql"]
        write(tmp_path, "0001_t.sql", "CREATE TABLE t (a int, b int);")
        with pytest.raises(MigrationError, match="0001_t.sql was edited after it was applied"):
            apply_migrations(conn, tmp_path)
        with pytest.raises(MigrationError):
            pending_migrations(conn, tmp_path)


def test_failed_migration_leaves_nothing_and_is_retried(scratch_url, tmp_path):
    real = Path(__file__).resolve().parent.parent / "migrations" / "0000_schema_migrations.sql"
    write(tmp_path, real.name, real.read_text())
    write(tmp_path, "0001_bad.sql", "CREATE TABLE good (a int); SELECT no_such_function();")
    with connect(scratch_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            apply_migrations(conn, tmp_path)
        assert conn.execute("SELECT to_regclass('good') AS t").fetchone()["t"] is None
        assert pending_migrations(conn, tmp_path) == ["0001_bad.sql"]
        write(tmp_path, "0001_bad.sql", "CREATE TABLE good (a int);")
        assert apply_migrations(conn, tmp_path) == ["0001_bad.sql"]


def test_parallel_runners_apply_each_file_once(scratch_url):
    results, errors = [], []

    def run():
        try:
            with connect(scratch_url, autocommit=True) as conn:
                results.append(apply_migrations(conn))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = [name for r in results for name in r]
    assert len(applied) == len(set(applied)) and "0001_memcubes.sql" in applied
