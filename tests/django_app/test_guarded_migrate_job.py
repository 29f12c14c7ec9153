"""The migrate release Job of django-local, as rendered, against a real PostgreSQL: `manage.py
migrate` under the migration guard gives up within its bound while a long transaction holds a
lock on catalog_product, names that session, and never stalls the running release's reads for
longer than its lock_timeout; once the blocker is gone, the same command migrates.

As tests/fastapi_app/test_guarded_migrate_job.py: the render's command and env (`webstack:migrations`
set to guard_harness.MIGRATIONS), with harness.RenderedRun.local's substitutions, plus the
Django image's: its WORKDIR (the project folder) and its Python (.venv-django) first on PATH.
catalog 0002 adds a column to catalog_product (ACCESS EXCLUSIVE, for milliseconds).
"""

from __future__ import annotations

import time

import pytest
from guard_harness import (BUDGET_SECONDS, LOCK_WAITS_SECONDS, LockHolder, OldPods, fresh_database,
                           assert_reads_went_on, release_behind_blocker,
                           render_guarded)
from harness import RenderedRun, run_command

from components.migration_guard import EXIT_GAVE_UP, MOUNT_PATH

from . import shop_app

STACK = "django-local"
PASSWORD = "guarded-shop-password"
TABLE = "catalog_product"


@pytest.fixture(scope="module")
def job(tmp_path_factory, django_venv) -> RenderedRun:
    return RenderedRun.find(render_guarded(STACK, tmp_path_factory.mktemp("render") / STACK),
                            "Job-web-migrate-*.json")


@pytest.fixture
def app_database(postgres, job) -> dict[str, str]:
    """The rendered role, owning a fresh database migrated up to catalog 0001 only."""
    env = fresh_database(postgres, job.env, PASSWORD)
    env["DJANGO_SECRET_KEY"] = shop_app.SECRET_KEY
    shop_app.ok(shop_app.manage({**env, "DATABASE_SSLMODE": "disable"}, "migrate", "catalog", "0001"))
    return env


def release(job: RenderedRun, database: dict[str, str], scratch) -> tuple[int, str, float]:
    argv, env, _, made = job.local(port=None, database=database, scratch=scratch)
    assert any(MOUNT_PATH in line for line in made), "the guard script comes from the rendered ConfigMap"
    env["DATABASE_NAME"] = database["DATABASE_NAME"]
    # The Django image: its Python first on PATH, its WORKDIR the project folder.
    env["PATH"] = f"{shop_app.BIN}:/usr/local/bin:/usr/bin:/bin"
    start = time.monotonic()
    result = run_command(argv, env, shop_app.APP_DIR, timeout=BUDGET_SECONDS + 60)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


def applied(postgres, dbname: str) -> list[str]:
    return postgres.psql(dbname, "SELECT name FROM django_migrations WHERE app = 'catalog' ORDER BY id").split()


def test_the_rendered_release_runs_manage_py_migrate_under_the_guard(job):
    argv = job.argv
    assert argv[argv.index("--") + 1:] == ["python", "manage.py", "migrate", "--noinput"]
    assert job.flag("--lock-timeout") == "1" and job.flag("--budget") == str(BUDGET_SECONDS)


def test_behind_a_long_transaction_migrate_gives_up_in_bound_naming_the_blocker_while_reads_go_on(
        postgres, app_database, job, tmp_path):
    name = app_database["DATABASE_NAME"]
    holder = LockHolder(postgres, name, TABLE, user=app_database["DATABASE_USER"], password=PASSWORD)
    status, output, took, during = release_behind_blocker(
        lambda: OldPods(postgres, name, TABLE, python=shop_app.BIN / "python"),
        lambda: release(job, app_database, tmp_path), holder)

    assert status == EXIT_GAVE_UP, output
    assert LOCK_WAITS_SECONDS <= took < BUDGET_SECONDS, took
    assert "django.db.utils.OperationalError: canceling statement due to lock timeout" in output
    assert "gave up after 3 attempts" in output
    assert f"blocking session: pid {holder.pid}, state 'idle in transaction'" in output
    assert f"its query: SELECT count(*) FROM {TABLE}" in output
    assert f"the migration waited for {TABLE} (AccessExclusiveLock)" in output
    assert PASSWORD not in output
    assert applied(postgres, name) == ["0001_create_product"], "nothing after 0001 was applied"

    assert_reads_went_on(during, took)


def test_without_the_blocker_the_same_command_migrates(postgres, app_database, job, tmp_path):
    status, output, _ = release(job, app_database, tmp_path)
    assert status == 0, output
    assert applied(postgres, app_database["DATABASE_NAME"])[:2] == ["0001_create_product", "0002_product_in_stock"]
    assert "canceling statement" not in output
