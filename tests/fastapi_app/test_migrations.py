"""Alembic migrations of the reference app, run as the release Job runs them
(`alembic upgrade head` from stacks/fastapi/app) against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import time

from harness import alembic


def _ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_upgrade_to_head_creates_the_tables_the_models_describe(postgres, database):
    env = postgres.env(database)
    _ok(alembic(env, "upgrade", "head"))
    assert postgres.psql(database, "SELECT version_num FROM alembic_version") == "0002"
    columns = postgres.psql(database, "SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'items' ORDER BY ordinal_position").split()
    assert columns == ["id", "name", "description", "created_at", "sku"]
    # `alembic check` compares the models with the migrated database: no drift allowed.
    assert "No new upgrade operations detected" in _ok(alembic(env, "check"))


def test_upgrade_twice_is_a_no_op(postgres, migrated):
    # The Job runs before every rollout, also when no migration is new.
    out = _ok(alembic(postgres.env(migrated), "upgrade", "head"))
    assert "Running upgrade" not in out


def test_downgrade_to_base_removes_everything_and_upgrade_rebuilds_it(postgres, migrated):
    env = postgres.env(migrated)
    _ok(alembic(env, "downgrade", "base"))
    assert postgres.psql(migrated, "SELECT to_regclass('public.items') IS NULL") == "t"
    assert postgres.psql(migrated, "SELECT count(*) FROM alembic_version") == "0"
    _ok(alembic(env, "upgrade", "head"))
    assert postgres.psql(migrated, "SELECT version_num FROM alembic_version") == "0002"


def test_each_step_downgrades_one_revision(postgres, migrated):
    env = postgres.env(migrated)
    _ok(alembic(env, "downgrade", "-1"))
    assert postgres.psql(migrated, "SELECT version_num FROM alembic_version") == "0001"
    assert postgres.psql(migrated, "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_items_sku'") == "0"
    _ok(alembic(env, "upgrade", "+1"))
    # Built CONCURRENTLY, so it must also be valid (a failed concurrent build leaves it INVALID).
    assert postgres.psql(migrated, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_sku'::regclass") == "t"


def test_a_migration_gives_up_instead_of_queueing_behind_a_long_lock(postgres, migrated):
    """lock_timeout: a migration stuck behind a long transaction would block every request
    of the running release queued behind its lock request. It fails fast instead, with the
    lock_timeout the kit's migration guard gives it through PGOPTIONS (env.py sets none)."""
    env = {**postgres.env(migrated), "PGOPTIONS": "-c lock_timeout=500ms"}
    _ok(alembic(env, "downgrade", "-1"))
    holder = subprocess.Popen(
        [str(postgres.bin / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.user,
         "-d", migrated, "-c", "BEGIN; LOCK TABLE items IN ACCESS SHARE MODE; SELECT pg_sleep(20); COMMIT;"],
        env={"PGPASSWORD": postgres.password, "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while postgres.psql(migrated, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                      "WHERE c.relname = 'items' AND l.granted") == "0":
            assert time.monotonic() < deadline, "the lock holder never got its lock"
            time.sleep(0.1)
        start = time.monotonic()
        result = alembic(env, "upgrade", "head")
        assert result.returncode != 0
        assert "lock timeout" in result.stderr
        assert time.monotonic() - start < 10
    finally:
        postgres.psql(migrated, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()")
        holder.terminate()
        holder.wait(10)
    _ok(alembic(env, "upgrade", "head"))
