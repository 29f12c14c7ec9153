"""webstack migration guard: a release step's migration command, run so it never blocks traffic.

Shipped by webstack (components/migration_guard.py) in a ConfigMap mounted into the migrate Job,
and run by the image's own Python with the standard library only, plus the app's PostgreSQL
driver (psycopg 3 or psycopg2) when it is importable. It:

1. runs the command with PostgreSQL's `lock_timeout` and `statement_timeout` in PGOPTIONS, which
   libpq sends as the connection's options, so any libpq-based app (psycopg 3, psycopg2, Django,
   SQLAlchemy on either) gets them without code; asyncpg ignores PGOPTIONS: such an app passes
   WEBSTACK_LOCK_TIMEOUT / WEBSTACK_STATEMENT_TIMEOUT (set here too) as `server_settings`;
2. watches the command's sessions from a connection of its own, found by the name PGAPPNAME gives
   them or, when the app names its sessions itself, by their client ports (the command's process
   tree's TCP sockets, from /proc): when one waits on a lock, it records who holds it
   (`pg_blocking_pids`: pid, state, query, how long the blocker's transaction has been open);
3. when the command fails with a lock timeout (SQLSTATE 55P03), runs it again after a backoff, up
   to --retries times, inside --budget seconds (the Job's deadline minus the pod's start);
4. gives up with exit status 75 and a message that names the blocking session, and writes it to
   the container's termination message, where `kubectl describe` and the Job's events show it.

Any other failure ends the guard with the command's own status, at once: only a lock timeout is
worth retrying (the blocker may be gone a minute later; a failing migration is not).

usage: python webstack_migration_guard.py --lock-timeout S --statement-timeout S --retries N
           --backoff S --max-backoff S --budget S -- COMMAND [ARG...]

Compatible with Python 3.8 and later: it runs in the user's image, whatever its Python.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

NAME = "webstack migration guard"
# Status when the guard gives up on a lock (EX_TEMPFAIL: try again later, the blocker may be gone).
EXIT_GAVE_UP = 75
# The guard's own connection: its statements only read pg_stat_activity and pg_locks, so short
# bounds keep a sick server from stalling the guard (the command's own run is not bounded by them).
GUARD_OPTIONS = "-c statement_timeout=5000 -c lock_timeout=1000"
CONNECT_TIMEOUT_SECONDS = 5
# How often the watcher looks for a waiting session: several times within the shortest
# lock_timeout the kit accepts (1 s), so a wait is seen before it is cancelled.
POLL_SECONDS = 0.25
# How much of a query to print: enough to recognise it, short enough for a termination message
# (Kubernetes keeps 4096 bytes of it).
QUERY_CHARS = 200
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_BYTES = 4000
# After SIGTERM, how long the command gets to stop before SIGKILL.
STOP_GRACE_SECONDS = 10
LOCK_TIMEOUT = "lock timeout"
STATEMENT_TIMEOUT = "statement timeout"
# The command's output when PostgreSQL cancelled a statement, as psycopg, psycopg2, SQLAlchemy and
# Django print it (the server's message text is English unless lc_messages says otherwise; the
# exception class names and SQLSTATE are not translated).
_LOCK_TIMEOUT = re.compile(r"canceling statement due to lock timeout|could not obtain lock|LockNotAvailable"
                           r"|\b55P03\b", re.IGNORECASE)
_STATEMENT_TIMEOUT = re.compile(r"canceling statement due to statement timeout", re.IGNORECASE)

WATCH_SQL = """
SELECT w.pid, w.query, extract(epoch FROM clock_timestamp() - w.query_start)::float8,
       (SELECT string_agg(CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text ELSE l.locktype END
                          || ' (' || l.mode || ')', ', ')
          FROM pg_locks l WHERE l.pid = w.pid AND NOT l.granted),
       b.pid, b.state, b.usename, b.application_name, host(b.client_addr), b.query,
       extract(epoch FROM clock_timestamp() - b.xact_start)::float8
  FROM pg_stat_activity w
 CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocking(pid)
  LEFT JOIN pg_stat_activity b ON b.pid = blocking.pid
 WHERE w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid()
   AND (w.application_name = %s
        OR (w.client_port = ANY (%s::int[]) AND w.client_addr IS NOT DISTINCT FROM inet_client_addr()))
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="webstack_migration_guard.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lock-timeout", type=int, required=True, help="seconds a statement may wait for a lock")
    parser.add_argument("--statement-timeout", type=int, required=True, help="seconds a statement may run")
    parser.add_argument("--retries", type=int, required=True, help="runs again after a lock timeout")
    parser.add_argument("--backoff", type=int, required=True, help="seconds before the first retry, doubled each time")
    parser.add_argument("--max-backoff", type=int, required=True, help="longest wait between two runs, seconds")
    parser.add_argument("--budget", type=int, required=True, help="seconds the guard may take in all")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the migration command")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command to run after --")
    return args


def waits(retries, backoff, max_backoff):
    """Seconds to wait before each retry: doubling from `backoff`, never above `max_backoff`."""
    return [min(backoff * 2 ** i, max_backoff) for i in range(retries)]


def app_name():
    """The command's application_name: the pod's name (its hostname) makes it unique when two
    releases' Jobs run at once; at most 63 bytes, PostgreSQL's limit."""
    return ("webstack-migrate:%s:%d" % (socket.gethostname(), os.getpid()))[:63]


def child_env(environ, lock_timeout, statement_timeout, name):
    """The command's environment: the Job's, with the timeouts appended to PGOPTIONS (after the
    user's own options, so the kit's values win, as its config says) and the sessions named."""
    env = dict(environ)
    ours = "-c lock_timeout=%ds -c statement_timeout=%ds" % (lock_timeout, statement_timeout)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + ours).strip()
    env["PGAPPNAME"] = name
    env["WEBSTACK_LOCK_TIMEOUT"] = "%ds" % lock_timeout
    env["WEBSTACK_STATEMENT_TIMEOUT"] = "%ds" % statement_timeout
    return env


def classify(output):
    """LOCK_TIMEOUT, STATEMENT_TIMEOUT or None, from the end of the command's output."""
    if _LOCK_TIMEOUT.search(output):
        return LOCK_TIMEOUT
    if _STATEMENT_TIMEOUT.search(output):
        return STATEMENT_TIMEOUT
    return None


# --- logging in, as the app does ----------------------------------------------------------

def _secret(environ, arn):
    """(user, password) from the RDS-managed Secrets Manager secret, with boto3 if the image has it."""
    try:
        import boto3  # noqa: PLC0415 - optional: only images that read DATABASE_SECRET_ARN have it
    except ImportError:
        raise RuntimeError("DATABASE_SECRET_ARN is set but boto3 is not importable, and no password is given "
                           "(DATABASE_PASSWORD, DATABASE_PASSWORD_FILE or PGPASSWORD)")
    parts = arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else None
    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
    doc = json.loads(value["SecretString"])
    return doc.get("username"), doc.get("password")


def connection_settings(environ):
    """(conninfo, keyword settings) of the guard's own connection, from the DATABASE_* contract the
    kit gives the app: DATABASE_URL, else DATABASE_HOST/PORT/NAME/USER/SSLMODE; the password from
    DATABASE_PASSWORD_FILE (rewritten on rotation), DATABASE_PASSWORD, PGPASSWORD (libpq reads it
    itself) or DATABASE_SECRET_ARN."""
    settings = {"application_name": "webstack-migration-guard", "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "options": GUARD_OPTIONS}
    conninfo = ""
    url = environ.get("DATABASE_URL", "")
    if url:
        scheme, sep, rest = url.partition("://")
        # SQLAlchemy's postgresql+psycopg:// is libpq's postgresql://.
        conninfo = scheme.split("+")[0] + sep + rest
    else:
        for key, name in (("host", "DATABASE_HOST"), ("port", "DATABASE_PORT"), ("dbname", "DATABASE_NAME"),
                          ("user", "DATABASE_USER"), ("sslmode", "DATABASE_SSLMODE")):
            if environ.get(name):
                settings[key] = environ[name]
    password_file = environ.get("DATABASE_PASSWORD_FILE", "")
    if password_file and os.path.exists(password_file):
        with open(password_file) as f:
            settings["password"] = f.read().strip()
    elif environ.get("DATABASE_PASSWORD"):
        settings["password"] = environ["DATABASE_PASSWORD"]
    elif not environ.get("PGPASSWORD") and environ.get("DATABASE_SECRET_ARN") and not url_password(url):
        user, password = _secret(environ, environ["DATABASE_SECRET_ARN"])
        settings["password"] = password
        if user and not conninfo and "user" not in settings:
            settings["user"] = user
    return conninfo, settings


def url_password(url):
    """The password in a postgresql://user:password@host/... URL, or ''."""
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    return userinfo.partition(":")[2]


def connect(environ):
    """A connection in autocommit mode with psycopg 3 or psycopg2, whichever the image has."""
    conninfo, settings = connection_settings(environ)
    try:
        import psycopg  # noqa: PLC0415 - the app's driver, if it is psycopg 3
    except ImportError:
        psycopg = None
    if psycopg is not None:
        return psycopg.connect(conninfo, autocommit=True, **settings)
    try:
        import psycopg2  # noqa: PLC0415 - the app's driver, if it is psycopg2
    except ImportError:
        raise RuntimeError("neither psycopg (3) nor psycopg2 is importable by %s" % sys.executable)
    conn = psycopg2.connect(conninfo, **settings)
    conn.autocommit = True
    return conn


def redact(text, environ):
    """`text` without any password the environment holds (a driver's error may quote the URL)."""
    secrets = [environ.get(n, "") for n in ("DATABASE_PASSWORD", "PGPASSWORD")]
    encoded = url_password(environ.get("DATABASE_URL", ""))
    secrets += [encoded, unquote(encoded)]
    for secret in secrets:
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


# --- watching for the lock wait ---------------------------------------------------------------

def process_tree(root):
    """`root` and its descendants (the migration command may start others: a shell script running
    alembic), from /proc; [root] where /proc is not Linux's."""
    children = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [root]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent's pid is the 2nd field after it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def local_ports(pids):
    """Local TCP ports of the sockets these processes hold: what the server sees as the sessions'
    client_port (on a direct connection; a pooler in between shows its own)."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


class Blocker:
    """One session that held a lock the command's session waited for, as last seen."""

    FIELDS = ("waiter_pid", "waiter_query", "waited_seconds", "waiting_for", "pid", "state", "user",
              "application", "client", "query", "xact_seconds")

    def __init__(self, row):
        for name, value in zip(self.FIELDS, row):
            setattr(self, name, value)

    def describe(self):
        if self.state is None:
            # PostgreSQL shows another role's session only to members of pg_read_all_stats.
            lines = ["blocking session: pid %s, user %r, application %r; its state, query and transaction are "
                     "not visible to this role (grant it pg_read_all_stats to see them)"
                     % (self.pid, self.user, self.application or "")]
        else:
            age = ("transaction open %d s" % self.xact_seconds if self.xact_seconds is not None
                   else "no transaction open")
            lines = ["blocking session: pid %s, state %r, %s, user %r, application %r, client %s"
                     % (self.pid, self.state, age, self.user, self.application or "", self.client or "local socket")]
            lines.append("  its query: %s" % shorten(self.query))
        lines.append("the migration waited for %s, running: %s"
                     % (self.waiting_for or "a lock", shorten(self.waiter_query)))
        return lines


def shorten(query):
    text = " ".join((query or "").split())
    if not text:
        return "(none)"
    return text if len(text) <= QUERY_CHARS else text[:QUERY_CHARS] + "..."


class Watcher(threading.Thread):
    """Polls, from its own connection, for the command's sessions waiting on a lock, and keeps
    what held the lock the last time one waited. Never fails the guard: if it cannot connect or
    query, it says why in `problem`."""

    def __init__(self, environ, name, lock_timeout, command_pid):
        """`command_pid`: a callable giving the running command's pid, or None between attempts."""
        super().__init__(name="watcher", daemon=True)
        self.environ, self.app_name, self.lock_timeout = environ, name, lock_timeout
        self.command_pid = command_pid
        self.conn = None
        self.problem = None
        self.blockers = []
        self.warned = False
        self.active = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def begin(self):
        with self.lock:
            self.blockers = []
        self.active.set()

    def end(self):
        self.active.clear()
        with self.lock:
            return list(self.blockers)

    def run(self):
        while not self.stop.is_set():
            if not self.active.wait(POLL_SECONDS):
                continue
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - a watcher's failure must never fail the migration
                self.problem = "%s: %s" % (type(exc).__name__, redact(str(exc).strip(), self.environ))
                self.close()
                self.stop.wait(1)
                continue
            self.stop.wait(POLL_SECONDS)
        self.close()

    def poll(self):
        if self.conn is None:
            self.conn = connect(self.environ)
            self.problem = None
        pid = self.command_pid()
        ports = local_ports(process_tree(pid)) if pid else []
        cur = self.conn.cursor()
        cur.execute(WATCH_SQL, (self.app_name, ports))
        rows = cur.fetchall()
        cur.close()
        if rows:
            found = [Blocker(row) for row in rows]
            with self.lock:
                self.blockers = found
            waited = max(b.waited_seconds or 0 for b in found)
            if waited > self.lock_timeout + 2 and not self.warned:
                self.warned = True
                say("the migration's session has waited %d s for a lock, more than lock_timeout (%d s): its "
                    "driver does not apply PGOPTIONS (asyncpg?); pass WEBSTACK_LOCK_TIMEOUT and "
                    "WEBSTACK_STATEMENT_TIMEOUT as server_settings" % (waited, self.lock_timeout))

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.conn = None


# --- running the command -------------------------------------------------------------------

def plural(count, noun):
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def say(message):
    print("%s: %s" % (NAME, message), file=sys.stderr, flush=True)


class Runner:
    """The command, one attempt at a time, its output passed through and its tail kept."""

    def __init__(self, command, env):
        self.command, self.env = command, env
        self.process = None
        self.stopping = threading.Event()

    def terminate(self, signum=signal.SIGTERM):
        self.stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    def attempt(self, timeout):
        """(exit status, the output's last lines, whether the guard stopped it at `timeout`)."""
        tail = collections.deque(maxlen=200)
        process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        self.process = process

        def pump():
            out = getattr(sys.stdout, "buffer", None)
            for line in iter(process.stdout.readline, b""):
                tail.append(line.decode("utf-8", "replace"))
                if out is not None:
                    out.write(line)
                    out.flush()
                else:
                    sys.stdout.write(line.decode("utf-8", "replace"))
                    sys.stdout.flush()

        reader = threading.Thread(target=pump, name="output", daemon=True)
        reader.start()
        timed_out = False
        try:
            status = process.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            timed_out = True
            process.terminate()
            try:
                status = process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait()
        reader.join(5)
        process.stdout.close()
        self.process = None
        return status, "".join(tail), timed_out


def blocker_lines(blockers, watcher, name):
    """What the guard knows of the session that held the lock."""
    if blockers:
        lines = []
        for b in blockers[:3]:
            lines += b.describe()
        pid = blockers[0].pid
        lines.append("look at it: SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE pid = %s;" % pid)
        lines.append("end it (rolls its transaction back): SELECT pg_terminate_backend(%s);" % pid)
        return lines
    if watcher.problem:
        return ["could not look up the blocking session: %s" % watcher.problem,
                "while the migration waits, find it with: SELECT pid, state, xact_start, query FROM "
                "pg_stat_activity WHERE pid = ANY (pg_blocking_pids(<the migration's pid>));"]
    return ["the watcher did not see the migration's session wait on a lock (neither by application_name %r "
            "nor by its client port: through a connection pooler, neither shows); while it waits, find the "
            "blocker with pg_blocking_pids" % name]


def finish(lines):
    """The final message: to stderr, and to the container's termination message when Kubernetes
    provides one (the file exists only in a container; never created here)."""
    for line in lines:
        say(line)
    try:
        fd = os.open(TERMINATION_LOG, os.O_WRONLY | os.O_TRUNC)
    except OSError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(("\n".join(lines) + "\n")[-TERMINATION_BYTES:])


def guard(args, environ=None, clock=time.monotonic):
    """Runs the command under the guard; returns the exit status."""
    environ = dict(os.environ if environ is None else environ)
    name = app_name()
    runner = Runner(args.command, child_env(environ, args.lock_timeout, args.statement_timeout, name))
    watcher = Watcher(environ, name, args.lock_timeout,
                      lambda: runner.process.pid if runner.process is not None else None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: runner.terminate(s))
    watcher.start()
    start = clock()
    schedule = waits(args.retries, args.backoff, args.max_backoff)
    attempts = args.retries + 1
    say("running %s with lock_timeout %d s, statement_timeout %d s; a lock timeout is retried up to %s "
        "(%s), within %d s" % (" ".join(args.command), args.lock_timeout, args.statement_timeout,
                                plural(args.retries, "time"),
                                "waits " + "+".join(map(str, schedule)) + " s" if schedule else "no waits",
                                args.budget))
    try:
        for attempt in range(1, attempts + 1):
            watcher.begin()
            status, tail, timed_out = runner.attempt(args.budget - (clock() - start))
            blockers = watcher.end()
            if runner.stopping.is_set():
                say("stopped by a signal during attempt %d" % attempt)
                # A command killed by signal N reports -N; a shell reports 128 + N.
                return 128 - status if status < 0 else (status or 128 + signal.SIGTERM)
            if status == 0:
                if attempt > 1:
                    say("succeeded on attempt %d of %d" % (attempt, attempts))
                return 0
            if timed_out:
                finish(["stopped the migration after %d s, the guard's budget (the Job's deadline less the pod's "
                        "start): raise webstack:migrations.job_deadline_seconds, or make the migration shorter"
                        % args.budget] + (blocker_lines(blockers, watcher, name) if blockers else []))
                return EXIT_GAVE_UP
            kind = classify(tail)
            if kind == STATEMENT_TIMEOUT:
                finish(["a statement ran longer than statement_timeout (%d s) and was cancelled; not retried. A "
                        "long statement under a strong lock blocks traffic: split it (batches, CREATE INDEX "
                        "CONCURRENTLY with SET statement_timeout = 0 in that migration), or raise "
                        "webstack:migrations.statement_timeout_seconds" % args.statement_timeout])
                return status
            if kind != LOCK_TIMEOUT:
                return status
            elapsed = clock() - start
            if attempt == attempts:
                finish(["gave up after %s in %d s: each waited lock_timeout (%d s) for a lock and was "
                        "cancelled (SQLSTATE 55P03); the old release keeps serving"
                        % (plural(attempts, "attempt"), elapsed, args.lock_timeout)] + blocker_lines(blockers, watcher, name)
                       + ["then run `pulumi up` again: it replaces this failed Job and runs the migration again"])
                return EXIT_GAVE_UP
            wait = schedule[attempt - 1]
            if elapsed + wait + args.lock_timeout > args.budget:
                finish(["gave up after %s in %d s: no time for another before the budget (%d s); the "
                        "old release keeps serving" % (plural(attempt, "attempt"), elapsed, args.budget)]
                       + blocker_lines(blockers, watcher, name))
                return EXIT_GAVE_UP
            held = ("; held by pid %s (%s)" % (blockers[0].pid, blockers[0].state or "state not visible")
                    if blockers else "")
            say("attempt %d of %d: lock timeout after %d s%s; next attempt in %d s"
                % (attempt, attempts, args.lock_timeout, held, wait))
            if runner.stopping.wait(wait):
                say("stopped by a signal while waiting to retry")
                return 128 + signal.SIGTERM
        return EXIT_GAVE_UP  # not reached: the last attempt returns above
    finally:
        watcher.stop.set()
        watcher.join(CONNECT_TIMEOUT_SECONDS + 2)


def main(argv=None):
    return guard(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
