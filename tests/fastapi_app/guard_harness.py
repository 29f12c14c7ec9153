"""What the migration guard's loopback tests share (FastAPI's Alembic here, Django's migrate in
tests/django_app): an example stack rendered with `webstack:migrations` changed, a long
transaction holding a lock on a table (the blocker), and the "old pods": a client reading that
table in a loop, each query timed, while the release Job runs.
"""

from __future__ import annotations

import copy
import json
import runpy
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import APP_BIN, HOST, Postgres

from cli.offline import run_program
from cli.render import PROGRAM, load_stack_file, write_render

BLOCKER_APP = "old-transaction"
# Short enough for a test, and what a production stack could set (webstack:migrations): three
# attempts, each waiting 1 s for its lock, 1 s and 2 s apart; the Job's deadline holds them with
# the statement timeout and the pod's start (3 x 1 + 3 + 30 + 60 = 96 <= 120).
MIGRATIONS = {"lock_timeout_seconds": 1, "lock_retries": 2, "backoff_seconds": 1, "max_backoff_seconds": 2,
              "statement_timeout_seconds": 30, "job_deadline_seconds": 120}
LOCK_WAITS_SECONDS = 3 * 1 + 1 + 2  # what the guard must spend before it gives up
BUDGET_SECONDS = 120 - 60  # the guard's own bound: the Job's deadline less the pod's start


def app_role(postgres: Postgres, user: str, password: str) -> None:
    """The rendered app role, once per PostgreSQL (tests share the session's)."""
    if postgres.psql("postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") != "1":
        postgres.psql("postgres", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")


def fresh_database(postgres: Postgres, job_env: dict[str, str], password: str) -> dict[str, str]:
    """The rendered role owning a new database named after the rendered one (unique per test), and
    the DATABASE_* a release run there gets."""
    user, name = job_env["DATABASE_USER"], f"{job_env['DATABASE_NAME']}_{int(time.time() * 1000) % 10**9}"
    app_role(postgres, user, password)
    postgres.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    return {"DATABASE_HOST": HOST, "DATABASE_PORT": str(postgres.port), "DATABASE_USER": user,
            "DATABASE_NAME": name, "DATABASE_PASSWORD": password, "PGPASSWORD": password,
            "DATABASE_URL": f"postgresql://{user}:{password}@{HOST}:{postgres.port}/{name}"}


def render_guarded(stack: str, dest: Path, migrations: dict[str, Any] = MIGRATIONS) -> Path:
    """`stack` rendered with these `webstack:migrations` keys (the stack file is left alone)."""
    stack_file = load_stack_file(stack)
    config = copy.deepcopy(stack_file.config)
    config["webstack:migrations"] = dict(migrations)
    run = run_program(stack, config, lambda: runpy.run_path(str(PROGRAM), run_name="__main__"),
                      stack_file.secret_keys)
    dest.mkdir(parents=True, exist_ok=True)
    write_render(stack, run, dest)
    return dest


class LockHolder:
    """An open transaction that has read `table` and sits idle (`idle in transaction`), as a leaked
    session of the running release does: logged in as the app's role (`user`, `password`), it
    holds an ACCESS SHARE lock on the table: harmless to readers, fatal to a migration that needs
    ACCESS EXCLUSIVE."""

    def __init__(self, postgres: Postgres, dbname: str, table: str, *, user: str, password: str) -> None:
        self.postgres, self.dbname = postgres, dbname
        self.process = subprocess.Popen(
            [str(postgres.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(postgres.port),
             "-U", user, "-d", dbname],
            env={"PGPASSWORD": password, "PGAPPNAME": BLOCKER_APP, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdin is not None
        self.process.stdin.write(f"BEGIN; SELECT count(*) FROM {table};\n")
        self.process.stdin.flush()
        self.pid = self._wait_for_lock(table)

    def _wait_for_lock(self, table: str) -> int:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pid = self.postgres.psql(self.dbname, (
                "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                f"WHERE a.application_name = '{BLOCKER_APP}' AND a.state = 'idle in transaction' "
                f"AND l.relation = '{table}'::regclass AND l.granted"))
            if pid:
                return int(pid)
            assert self.process.poll() is None, "psql holding the lock exited"
            time.sleep(0.1)
        raise TimeoutError(f"the blocking transaction never held its lock on {table}")

    def close(self) -> None:
        """Ends the transaction (the session's end rolls it back) and psql."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write("ROLLBACK;\n\\q\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.postgres.psql(self.dbname, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        f"WHERE application_name = '{BLOCKER_APP}'")


# A client of the running release: reads the table in a loop, each query on its own (autocommit,
# as a web request's short transaction), and prints when each started and how long it took.
READER = """
import json, sys, time
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True, application_name="old-pods")
while True:
    start = time.time()
    conn.execute("SELECT count(*) FROM %s" % sys.argv[2]).fetchone()
    print(json.dumps([start, time.time() - start]), flush=True)
    time.sleep(0.05)
"""


class OldPods:
    """The running release's queries on `table`, until `stop()`, from `python`'s psycopg (the
    app's venv: .venv-app's by default)."""

    def __init__(self, postgres: Postgres, dbname: str, table: str, *, python: Path = APP_BIN / "python") -> None:
        dsn = (f"host={HOST} port={postgres.port} dbname={dbname} user={postgres.user} "
               f"password={postgres.password} connect_timeout=5")
        self.process = subprocess.Popen([str(python), "-c", READER, dsn, table],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        stdin=subprocess.DEVNULL)
        self.queries: list[tuple[float, float]] = []

    def stop(self) -> list[tuple[float, float]]:
        """(start time, seconds taken) of every query that completed."""
        self.process.terminate()
        out, err = self.process.communicate(timeout=15)
        self.queries = [tuple(json.loads(line)) for line in out.splitlines() if line.startswith("[")]
        assert self.queries, f"the old pods' reader ran no query: {err[-2000:]}"
        return self.queries

    def during(self, start: float, end: float) -> list[tuple[float, float]]:
        return [q for q in self.queries if start <= q[0] and q[0] + q[1] <= end]


def release_behind_blocker(old_pods: Callable[[], OldPods], release: Callable[[], tuple[int, str, float]],
                           holder: LockHolder) -> tuple[int, str, float, list[tuple[float, float]]]:
    """Runs `release()` while the old pods read the blocked table; then ends the blocker.
    Returns the release's (status, output, seconds) and the old pods' reads that started and
    ended while it ran."""
    pods = None
    try:
        pods = old_pods()
        time.sleep(0.5)  # the reader is connected and reading before the migration starts
        started = time.time()
        status, output, took = release()
        ended = time.time()
        pods.stop()
    finally:
        if pods is not None and pods.process.poll() is None:
            pods.process.kill()
        holder.close()
    print(output)
    return status, output, took, pods.during(started, ended)


def assert_reads_went_on(during: list[tuple[float, float]], took: float) -> None:
    """The running release's reads went on all along: none waited longer than one lock_timeout
    (queued behind the migration's lock request), most not at all."""
    assert len(during) >= 10, f"only {len(during)} reads completed during the release"
    slowest = max(seconds for _, seconds in during)
    print(f"release took {took:.1f} s; {len(during)} reads meanwhile, the slowest {slowest:.2f} s")
    assert slowest < MIGRATIONS["lock_timeout_seconds"] + 1.5, slowest
