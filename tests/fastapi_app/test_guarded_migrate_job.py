"""The migrate release Job of fastapi-local, as rendered, against a real PostgreSQL: a migration
that needs an ACCESS EXCLUSIVE lock on a table another transaction keeps open gives up within its
configured bound, names the blocking session, and never stalls the running release's queries
for longer than its lock_timeout; once the blocker is gone, the same command migrates.

The release command is the render's (`config/run/Job-web-migrate-*.json`: the migration guard
wrapping `alembic upgrade head`, its script from the rendered ConfigMap), with `webstack:migrations`
set to short test values (guard_harness.MIGRATIONS) and only harness.RenderedRun.local's
substitutions: the database address and credentials, the ConfigMap mount, the pod's /tmp, the
working dir. The migration 0002 adds a column to `items` (ACCESS EXCLUSIVE, for milliseconds).
"""

from __future__ import annotations

import threading
import time

import pytest
from guard_harness import (BUDGET_SECONDS, LOCK_WAITS_SECONDS, LockHolder, OldPods, fresh_database,
                           assert_reads_went_on, release_behind_blocker,
                           render_guarded)
from harness import RenderedRun, alembic, run_command

from components.migration_guard import EXIT_GAVE_UP, MOUNT_PATH, SCRIPT_NAME

STACK = "fastapi-local"
PASSWORD = "guarded-app-password"


@pytest.fixture(scope="module")
def job(tmp_path_factory, app_venv) -> RenderedRun:
    return RenderedRun.find(render_guarded(STACK, tmp_path_factory.mktemp("render") / STACK), "Job-*.json")


@pytest.fixture
def app_database(postgres, job) -> dict[str, str]:
    """The rendered role and a fresh database of the rendered name's kind, at revision 0001."""
    env = fresh_database(postgres, job.env, PASSWORD)
    result = alembic({**env, "DATABASE_SSLMODE": "disable"}, "upgrade", "0001")
    assert result.returncode == 0, result.stdout + result.stderr
    return env


def release(job: RenderedRun, database: dict[str, str], scratch) -> tuple[int, str, float]:
    """The rendered release command, run to the end: (status, its output, seconds it took)."""
    argv, env, cwd, made = job.local(port=None, database=database, scratch=scratch)
    assert any(MOUNT_PATH in line for line in made), "the guard script comes from the rendered ConfigMap"
    # DATABASE_NAME is the rendered one; this test's database has a name of its own.
    env["DATABASE_NAME"] = database["DATABASE_NAME"]
    start = time.monotonic()
    result = run_command(argv, env, cwd, timeout=BUDGET_SECONDS + 60)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


def revision(postgres, dbname: str) -> str:
    return postgres.psql(dbname, "SELECT version_num FROM alembic_version")


def test_the_rendered_release_runs_alembic_under_the_guard(job):
    argv = job.argv
    assert argv[:2] == ["python", f"{MOUNT_PATH}/{SCRIPT_NAME}"]
    assert argv[argv.index("--") + 1:] == ["alembic", "upgrade", "head"]
    assert job.flag("--lock-timeout") == "1" and job.flag("--retries") == "2"
    assert job.flag("--budget") == str(BUDGET_SECONDS)


def test_behind_a_long_transaction_the_migration_gives_up_in_bound_naming_the_blocker_while_reads_go_on(
        postgres, app_database, job, tmp_path):
    name = app_database["DATABASE_NAME"]
    holder = LockHolder(postgres, name, "items", user=app_database["DATABASE_USER"], password=PASSWORD)
    status, output, took, during = release_behind_blocker(
        lambda: OldPods(postgres, name, "items"), lambda: release(job, app_database, tmp_path), holder)

    assert status == EXIT_GAVE_UP, output
    # Every attempt waited its lock_timeout and every backoff was served, inside the guard's budget.
    assert LOCK_WAITS_SECONDS <= took < BUDGET_SECONDS, took
    assert "attempt 1 of 3: lock timeout after 1 s; held by pid" in output
    assert "attempt 2 of 3: lock timeout after 1 s; held by pid" in output
    assert "gave up after 3 attempts" in output
    assert f"blocking session: pid {holder.pid}, state 'idle in transaction'" in output
    assert "its query: SELECT count(*) FROM items" in output
    assert "the migration waited for items (AccessExclusiveLock)" in output
    assert f"SELECT pg_terminate_backend({holder.pid});" in output
    assert PASSWORD not in output
    assert revision(postgres, name) == "0001", "nothing of 0002 was applied"

    assert_reads_went_on(during, took)


def test_without_the_blocker_the_same_command_migrates(postgres, app_database, job, tmp_path):
    status, output, _ = release(job, app_database, tmp_path)
    assert status == 0, output
    assert revision(postgres, app_database["DATABASE_NAME"]) == "0002"
    assert "canceling statement" not in output and "attempt 1 of 3" not in output


def end_after_first_timeout(postgres, dbname: str, holder: LockHolder) -> threading.Thread:
    """Ends the blocking transaction once the guard's first attempt has waited on it and been
    cancelled: while the guard waits before its second attempt."""

    def waiting() -> bool:
        return postgres.psql(dbname, "SELECT count(*) FROM pg_stat_activity "
                                     f"WHERE {holder.pid} = ANY (pg_blocking_pids(pid))") != "0"

    def run() -> None:
        deadline = time.monotonic() + 60
        while not waiting() and time.monotonic() < deadline:
            time.sleep(0.1)
        while waiting() and time.monotonic() < deadline:
            time.sleep(0.1)
        postgres.psql(dbname, f"SELECT pg_terminate_backend({holder.pid})")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_blocker_gone_between_attempts_lets_a_retry_succeed(postgres, app_database, job, tmp_path):
    name = app_database["DATABASE_NAME"]
    holder = LockHolder(postgres, name, "items", user=app_database["DATABASE_USER"], password=PASSWORD)
    try:
        ender = end_after_first_timeout(postgres, name, holder)
        status, output, _ = release(job, app_database, tmp_path)
        ender.join(60)
    finally:
        holder.close()
    assert status == 0, output
    assert f"attempt 1 of 3: lock timeout after 1 s; held by pid {holder.pid} (idle in transaction)" in output
    assert "succeeded on attempt 2 of 3" in output
    assert revision(postgres, name) == "0002"
