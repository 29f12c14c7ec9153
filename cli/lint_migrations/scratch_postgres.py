"""A throwaway PostgreSQL server for rendering Django migrations' SQL.

Why a server at all: `manage.py sqlmigrate` needs a live connection. Django reads which migrations
are applied from the database, and on PostgreSQL its schema editor looks up constraint and index
names in the live schema (an AlterField that drops a foreign key asks the database for the
constraint's name). So the SQL of migration N is only right against a database that has
migrations 1..N-1 applied, and the linter builds one: it migrates a scratch database step by step.

Why its own server: a linter must never migrate a database someone uses. The server lives in a
temporary folder, listens on 127.0.0.1 at a free port with a random password, and is removed when
the lint ends, whatever happened.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
USER = "webstack_lint"
DATABASE = "webstack_lint"
# initdb on 2 cores takes 1-3 s; a loaded CI machine, far more.
INITDB_TIMEOUT_S = 120
# pg_ctl's own wait for the server to accept connections (-t); the subprocess gets 30 s more.
START_TIMEOUT_S = 60


class ScratchPostgresError(RuntimeError):
    """The throwaway server could not be started (what is missing and how to get it)."""


def find_bin_dir(given: Path | None = None) -> Path | None:
    """The folder with initdb and pg_ctl: the one given, else initdb's on PATH, else Debian's
    newest /usr/lib/postgresql/<major>/bin (Debian keeps the server binaries off PATH)."""
    if given is not None:
        return given if (given / "initdb").exists() else None
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    majors = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(majors[-1]).parent if majors else None


def os_user_for_root() -> str | None:
    """initdb and postgres refuse to run as root; as root the server runs as this user."""
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ScratchPostgres:
    """`with ScratchPostgres(bin_dir) as pg:` a running server and an empty database `pg.database`,
    reached through `pg.env()`; stopped and deleted on exit."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.password = secrets.token_urlsafe(24)
        self.port = 0
        self.dir: Path | None = None
        self.running = False
        self._as: list[str] = []

    @property
    def database(self) -> str:
        return DATABASE

    @property
    def user(self) -> str:
        return USER

    def __enter__(self) -> ScratchPostgres:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> None:
        if os.geteuid() == 0:
            user = os_user_for_root()
            if user is None or shutil.which("runuser") is None:
                raise ScratchPostgresError("running as root, and PostgreSQL refuses root: the lint needs runuser "
                                           "and a 'postgres' (or 'nobody') user to run its scratch server as")
            self._as = ["runuser", "-u", user, "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="webstack-lint-pg-"))
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as:
            owner = pwd.getpwnam(self._as[2])
            for path in (self.dir, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        data = self.dir / "data"
        self._run([str(self.bin / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                   "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], INITDB_TIMEOUT_S)
        pwfile.unlink()
        self.port = _free_port()
        # Durability is worthless here: the data is deleted in seconds.
        options = (f"-c listen_addresses={HOST} -p {self.port} -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._run([str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-o", options,
                   "-w", "-t", str(START_TIMEOUT_S), "start"], START_TIMEOUT_S + 30)
        self.running = True
        self._run([str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port),
                   "-U", USER, "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}"], 60,
                  env={"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"})

    def _run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
        assert self.dir is not None
        result = subprocess.run(self._as + argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        if result.returncode != 0:
            log = self.dir / "server.log"
            raise ScratchPostgresError(f"{Path(argv[0]).name} failed (exit {result.returncode}): "
                                       f"{(result.stderr or result.stdout).strip()}"
                                       + (f"\n{log.read_text()[-2000:]}" if log.exists() else ""))

    def env(self) -> dict[str, str]:
        """The database as the kit hands it to an app and its release Jobs (DATABASE_*, PGPASSWORD,
        and the URL under `url_env`), pointing at the scratch database."""
        return {"DATABASE_HOST": HOST, "DATABASE_PORT": str(self.port), "DATABASE_NAME": DATABASE,
                "DATABASE_USER": USER, "DATABASE_PASSWORD": self.password, "PGPASSWORD": self.password,
                "DATABASE_SSLMODE": "disable"}

    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@{HOST}:{self.port}/{DATABASE}?sslmode=disable"

    def server_version(self) -> str:
        """The major version the SQL is rendered against (PG_VERSION of the data folder)."""
        assert self.dir is not None
        return (self.dir / "data" / "PG_VERSION").read_text().strip()

    def close(self) -> None:
        if self.dir is None:
            return
        data = self.dir / "data"
        if self.running:
            try:
                self._run([str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
                          60)
            except (ScratchPostgresError, subprocess.TimeoutExpired):
                # Last resort: the postmaster's pid is the first line of postmaster.pid.
                pid_file = data / "postmaster.pid"
                if pid_file.exists():
                    try:
                        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                    except (ProcessLookupError, ValueError, IndexError):
                        pass
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
