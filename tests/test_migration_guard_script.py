"""The migration guard script on its own, with stand-in commands and no database: what it retries
(a lock timeout only), within which bounds, what it passes the command, how it logs in as the app
does with either driver, and that it never prints a password. The real runs against PostgreSQL
are tests/fastapi_app/test_guarded_migrate_job.py and tests/django_app/test_guarded_migrate_job.py."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import pytest

from components import migration_guard_script as guard
from components.migration_guard import SCRIPT_FILE, SCRIPT_NAME

LOCK_TIMEOUT_ERROR = ("sqlalchemy.exc.OperationalError: (psycopg.errors.LockNotAvailable) canceling statement "
                      "due to lock timeout")


@pytest.fixture
def script(tmp_path):
    """The script alone in a folder, as the ConfigMap mounts it (run from components/, its folder
    on sys.path would shadow the standard library's `types` with components/types.py)."""
    folder = tmp_path / "guard"
    folder.mkdir()
    shutil.copy(SCRIPT_FILE, folder / SCRIPT_NAME)
    return folder / SCRIPT_NAME


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_guard(script, command, *, retries=2, backoff=1, max_backoff=1, budget=60, env=None, timeout=60):
    """The guard around `command` (a Python snippet, run by this interpreter); (result, seconds)."""
    argv = [sys.executable, str(script), "--lock-timeout", "1", "--statement-timeout", "30",
            "--retries", str(retries), "--backoff", str(backoff), "--max-backoff", str(max_backoff),
            "--budget", str(budget), "--", sys.executable, "-c", command]
    # A database nobody listens on: the watcher fails to connect, and says so.
    base = {"PATH": os.environ["PATH"], "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(closed_port()),
            "DATABASE_NAME": "app", "DATABASE_USER": "app", "DATABASE_PASSWORD": "s3cret-pw"}
    start = time.monotonic()
    result = subprocess.run(argv, env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - start


def fails_with_lock_timeout_until(marker, runs: int) -> str:
    """A command that fails with a lock timeout for its first `runs` runs, then succeeds."""
    return (f"import pathlib, sys\np = pathlib.Path({str(marker)!r})\nn = int(p.read_text()) if p.exists() else 0\n"
            f"p.write_text(str(n + 1))\nif n < {runs}:\n    print({LOCK_TIMEOUT_ERROR!r}); sys.exit(1)\n"
            "print('migrated')\n")


# --- what is retried, and for how long -------------------------------------------------------

def test_a_lock_timeout_is_retried_with_backoff_then_the_guard_gives_up_with_status_75(script, tmp_path):
    marker = tmp_path / "runs"
    result, took = run_guard(script, fails_with_lock_timeout_until(marker, 99), retries=2, backoff=1, max_backoff=2)
    assert result.returncode == guard.EXIT_GAVE_UP
    assert marker.read_text() == "3", "one run and two retries"
    assert 1 + 2 <= took < 20, took  # the waits 1 s and 2 s were served
    assert "attempt 1 of 3: lock timeout after 1 s; next attempt in 1 s" in result.stderr
    assert "attempt 2 of 3: lock timeout after 1 s; next attempt in 2 s" in result.stderr
    assert "gave up after 3 attempts" in result.stderr
    # No database here: the guard still retried, and says why it cannot name the blocker.
    assert "could not look up the blocking session: " in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_a_retry_that_gets_its_lock_succeeds(script, tmp_path):
    marker = tmp_path / "runs"
    result, _ = run_guard(script, fails_with_lock_timeout_until(marker, 1))
    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stdout, "the command's output passes through"
    assert "succeeded on attempt 2 of 3" in result.stderr


def test_any_other_failure_ends_the_guard_at_once_with_the_commands_status(script, tmp_path):
    marker = tmp_path / "runs"
    command = (f"import pathlib, sys\npathlib.Path({str(marker)!r}).write_text('ran')\n"
               "print('django.db.utils.ProgrammingError: relation \"items\" does not exist'); sys.exit(3)")
    result, _ = run_guard(script, command)
    assert result.returncode == 3
    assert "attempt" not in result.stderr


def test_a_statement_timeout_is_not_retried_and_says_what_to_do(script):
    result, _ = run_guard(script, "import sys; print('psycopg.errors.QueryCanceled: canceling statement due to "
                                  "statement timeout'); sys.exit(1)")
    assert result.returncode == 1
    assert "a statement ran longer than statement_timeout (30 s) and was cancelled; not retried" in result.stderr
    assert "attempt 1 of" not in result.stderr


def test_a_command_still_running_at_the_end_of_the_budget_is_stopped_with_a_message(script):
    result, took = run_guard(script, "import time; time.sleep(60)", budget=2)
    assert result.returncode == guard.EXIT_GAVE_UP
    assert took < 15, took
    assert "stopped the migration after 2 s, the guard's budget" in result.stderr
    assert "webstack:migrations.job_deadline_seconds" in result.stderr


def test_no_retry_starts_that_could_not_end_within_the_budget(script, tmp_path):
    marker = tmp_path / "runs"
    result, _ = run_guard(script, fails_with_lock_timeout_until(marker, 99), retries=5, backoff=30, max_backoff=30,
                          budget=20)
    assert result.returncode == guard.EXIT_GAVE_UP
    assert marker.read_text() == "1"
    assert "gave up after 1 attempt in" in result.stderr and "no time for another before the budget (20 s)" \
        in result.stderr


def test_sigterm_reaches_the_command_and_stops_the_guard(script, tmp_path):
    pidfile = tmp_path / "pid"
    argv = [sys.executable, str(script), "--lock-timeout", "1", "--statement-timeout", "30", "--retries", "2",
            "--backoff", "1", "--max-backoff", "1", "--budget", "60", "--", sys.executable, "-c",
            f"import os, pathlib, time; pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid())); time.sleep(60)"]
    process = subprocess.Popen(argv, env={"PATH": os.environ["PATH"]}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        child = int(pidfile.read_text())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 128 + signal.SIGTERM, "as a shell reports a command SIGTERM stopped"
    assert "stopped by a signal during attempt 1" in err
    assert not os.path.exists(f"/proc/{child}") or "zombie" in open(f"/proc/{child}/status").read().lower()


# --- what the command gets -------------------------------------------------------------------

def test_the_command_gets_the_timeouts_in_pgoptions_after_the_users_own_and_its_sessions_named(script):
    command = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in ('PGOPTIONS', 'PGAPPNAME', "
               "'WEBSTACK_LOCK_TIMEOUT', 'WEBSTACK_STATEMENT_TIMEOUT', 'DATABASE_HOST')}))")
    result, _ = run_guard(script, command, env={"PGOPTIONS": "-c search_path=app"})
    env = json.loads(result.stdout.strip().splitlines()[-1])
    # Later -c options win: the kit's timeouts, as webstack:migrations says, whatever the user set.
    assert env["PGOPTIONS"] == "-c search_path=app -c lock_timeout=1s -c statement_timeout=30s"
    assert env["PGAPPNAME"].startswith("webstack-migrate:") and len(env["PGAPPNAME"]) <= 63
    assert env["WEBSTACK_LOCK_TIMEOUT"] == "1s" and env["WEBSTACK_STATEMENT_TIMEOUT"] == "30s"
    assert env["DATABASE_HOST"] == "127.0.0.1", "the Job's env passes through"


@pytest.mark.parametrize("output,kind", [
    ("sqlalchemy.exc.OperationalError: (psycopg.errors.LockNotAvailable) canceling statement due to lock timeout",
     guard.LOCK_TIMEOUT),
    ("django.db.utils.OperationalError: canceling statement due to lock timeout", guard.LOCK_TIMEOUT),
    ("psycopg2.errors.LockNotAvailable: could not obtain lock on relation \"items\"", guard.LOCK_TIMEOUT),
    ("ERROR:  55P03: canceling statement due to lock timeout", guard.LOCK_TIMEOUT),
    ("psycopg.errors.QueryCanceled: canceling statement due to statement timeout", guard.STATEMENT_TIMEOUT),
    ("django.db.utils.ProgrammingError: column \"sku\" already exists", None),
    # A migration's own name mentioning timeouts is not a timeout.
    ("INFO  [alembic] Running upgrade 0003 -> 0004, lower the lock timeout\nProgrammingError: boom", None),
    ("", None),
])
def test_the_failure_is_read_from_the_commands_output(output, kind):
    assert guard.classify(output) == kind


def test_backoff_doubles_up_to_its_cap():
    assert guard.waits(5, 5, 60) == [5, 10, 20, 40, 60]
    assert guard.waits(0, 5, 60) == []


def test_the_script_runs_on_python_3_8_and_needs_only_the_standard_library():
    tree = ast.parse(SCRIPT_FILE.read_text(), feature_version=(3, 8))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    optional = {"psycopg", "psycopg2", "boto3"}  # imported inside try, used when the image has them
    assert imported - optional <= set(sys.stdlib_module_names)


# --- logging in as the app does ------------------------------------------------------------------

def test_a_sqlalchemy_url_is_given_to_libpq_as_its_own_scheme():
    conninfo, settings = guard.connection_settings(
        {"DATABASE_URL": "postgresql+psycopg://app@db:5432/app?sslmode=require", "PGPASSWORD": "pw"})
    assert conninfo == "postgresql://app@db:5432/app?sslmode=require"
    assert "password" not in settings, "libpq reads PGPASSWORD itself"
    assert settings["application_name"] == "webstack-migration-guard"
    assert settings["options"] == guard.GUARD_OPTIONS


def test_the_password_file_wins_over_the_env_as_after_a_rotation(tmp_path):
    secret = tmp_path / "DATABASE_PASSWORD"
    secret.write_text("rotated\n")
    conninfo, settings = guard.connection_settings(
        {"DATABASE_HOST": "db", "DATABASE_PORT": "5432", "DATABASE_NAME": "app", "DATABASE_USER": "app",
         "DATABASE_SSLMODE": "require", "DATABASE_PASSWORD": "old", "DATABASE_PASSWORD_FILE": str(secret)})
    assert conninfo == ""
    assert {k: settings[k] for k in ("host", "port", "dbname", "user", "sslmode", "password")} == {
        "host": "db", "port": "5432", "dbname": "app", "user": "app", "sslmode": "require", "password": "rotated"}


def test_the_rds_secret_is_read_with_boto3_when_no_password_is_given(monkeypatch):
    calls = []

    class Client:
        def get_secret_value(self, SecretId):  # noqa: N803 (boto3's name)
            calls.append(SecretId)
            return {"SecretString": json.dumps({"username": "app_admin", "password": "from-rds"})}

    boto3 = types.ModuleType("boto3")
    boto3.client = lambda service, region_name=None: calls.append((service, region_name)) or Client()
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1a2b"
    _, settings = guard.connection_settings({"DATABASE_HOST": "db", "DATABASE_NAME": "app",
                                             "DATABASE_SECRET_ARN": arn})
    assert settings["password"] == "from-rds" and settings["user"] == "app_admin"
    assert calls == [("secretsmanager", "eu-west-1"), arn]


def test_without_boto3_the_secret_arn_gives_a_reason_not_a_traceback(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(RuntimeError, match="DATABASE_SECRET_ARN is set but boto3 is not importable"):
        guard.connection_settings({"DATABASE_HOST": "db", "DATABASE_SECRET_ARN": "arn:aws:secretsmanager:x"})


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_either_driver_connects_in_autocommit(monkeypatch, driver):
    made = {}

    class Connection:
        autocommit = False

    def connect(conninfo, **settings):
        made.update(conninfo=conninfo, **settings)
        conn = Connection()
        conn.autocommit = settings.pop("autocommit", False)
        return conn

    fake = types.ModuleType(driver)
    fake.connect = connect
    monkeypatch.setitem(sys.modules, "psycopg", fake if driver == "psycopg" else None)
    monkeypatch.setitem(sys.modules, "psycopg2", fake if driver == "psycopg2" else None)
    conn = guard.connect({"DATABASE_URL": "postgresql://app:pw@db/app"})
    assert conn.autocommit is True
    assert made["conninfo"] == "postgresql://app:pw@db/app" and made["connect_timeout"] == 5


def test_without_a_driver_the_reason_names_the_interpreter(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(RuntimeError, match="neither psycopg .3. nor psycopg2 is importable by"):
        guard.connect({"DATABASE_URL": "postgresql://app@db/app"})


def test_passwords_are_redacted_from_any_message_however_they_were_given():
    env = {"DATABASE_PASSWORD": "hunter22", "PGPASSWORD": "hunter22",
           "DATABASE_URL": "postgresql://app:p%40ss%23word@db/app"}
    text = guard.redact("auth failed for hunter22 in postgresql://app:p%40ss%23word@db (p@ss#word)", env)
    assert "hunter22" not in text and "p%40ss%23word" not in text and "p@ss#word" not in text


# --- what the message says ---------------------------------------------------------------------------

ROW = (4242, "ALTER TABLE items ADD COLUMN sku varchar(64)", 0.8, "items (AccessExclusiveLock)",
       1717, "idle in transaction", "app", "orders-api", "10.0.3.7", "SELECT * FROM items WHERE id = 1", 312.4)


def test_a_visible_blocker_is_named_with_its_state_query_and_transaction_age():
    lines = guard.Blocker(ROW).describe()
    assert lines[0] == ("blocking session: pid 1717, state 'idle in transaction', transaction open 312 s, "
                        "user 'app', application 'orders-api', client 10.0.3.7")
    assert lines[1] == "  its query: SELECT * FROM items WHERE id = 1"
    assert lines[2] == ("the migration waited for items (AccessExclusiveLock), running: ALTER TABLE items ADD "
                        "COLUMN sku varchar(64)")


def test_a_blocker_of_another_role_is_named_by_pid_and_the_grant_that_shows_more():
    hidden = ROW[:5] + (None, "reporting", "", None, "<insufficient privilege>", None)
    line = guard.Blocker(hidden).describe()[0]
    assert line.startswith("blocking session: pid 1717, user 'reporting'")
    assert "grant it pg_read_all_stats" in line


def test_a_long_query_is_shortened():
    assert guard.shorten("SELECT " + "x, " * 200) .endswith("...")
    assert len(guard.shorten("SELECT " + "x, " * 200)) == guard.QUERY_CHARS + 3


def test_the_final_message_goes_to_an_existing_termination_log_only(tmp_path, monkeypatch):
    log = tmp_path / "termination-log"
    monkeypatch.setattr(guard, "TERMINATION_LOG", str(log))
    guard.finish(["gave up"])
    assert not log.exists(), "never created outside a container"
    log.write_text("")
    guard.finish(["gave up", "blocking session: pid 1"])
    assert log.read_text() == "gave up\nblocking session: pid 1\n"


def test_the_commands_sockets_are_found_by_their_local_ports():
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client.connect(server.getsockname())
        port = client.getsockname()[1]
        assert port in guard.local_ports(guard.process_tree(os.getpid()))
