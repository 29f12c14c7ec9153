"""Real servers on loopback for the FastAPI reference app: a throwaway PostgreSQL, an OTLP
trace receiver, a fake Secrets Manager, and the app server itself.

Plain classes (no pytest) so bench/serve/fastapi_setups.py uses the same ones. Everything
listens on 127.0.0.1, every wait is bounded, and every process started here is stopped by
its `close()`/`stop()` (SIGTERM, then SIGKILL of its process group after a bounded wait).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli.lint_migrations.scratch_postgres import find_bin_dir, os_user_for_root

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "stacks" / "fastapi" / "app"
VENV_APP = ROOT / ".venv-app"
APP_BIN = VENV_APP / "bin"
HOST = "127.0.0.1"
# What the kubelet would put in env from the pod's own fields, for a pod run here.
POD_FIELD_STAND_INS = {"metadata.name": "web-app-test-pod", "metadata.namespace": "webstack-test",
                       "metadata.uid": "00000000-0000-4000-8000-000000000000", "spec.nodeName": "test-node",
                       "spec.serviceAccountName": "web-app", "status.podIP": HOST, "status.hostIP": HOST}


def require(reason: str | None) -> None:
    """Skip with `reason` when something a test needs is missing; under CI (CI=true) fail instead,
    because .ci/run installs everything and a skipped check there would pass silently."""
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment with .venv-app first on PATH: nothing leaks in from the caller's
    shell (no stray OTEL_* or DATABASE_*), so a server sees exactly what a test gives it.
    Traces are off unless `extra` turns them on: OTLP's default collector (localhost:4318)
    does not run here, and exporting to it would only retry until the shutdown times out."""
    env = {"PATH": f"{APP_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "OTEL_TRACES_EXPORTER": "none"}
    env.update(extra or {})
    return env


def missing_app_venv() -> str | None:
    if not (APP_BIN / "uvicorn").exists() or not (APP_BIN / "alembic").exists():
        return f"{VENV_APP} has no uvicorn/alembic: run tools/setup (./tools/test does)"
    return None


# --- PostgreSQL ---------------------------------------------------------------------------

def postgres_bin_dir() -> Path | None:
    """Debian keeps server binaries in /usr/lib/postgresql/<version>/bin, off PATH: found as the
    kit's own lint-migrations command finds them."""
    return find_bin_dir()


def missing_postgres() -> str | None:
    if postgres_bin_dir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                "/usr/lib/postgresql/*/bin: apt-get install postgresql (tools/setup does, as root)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _pg_os_user() is None):
        return "running as root, and PostgreSQL refuses root: needs runuser and a 'postgres' or 'nobody' user"
    return None


def _pg_os_user() -> str | None:
    """As root, the user PostgreSQL runs as (it refuses root), as lint-migrations picks it."""
    return os_user_for_root()


class Postgres:
    """A PostgreSQL cluster in a temp dir: TCP on 127.0.0.1:<free port> with password
    (scram) logins, its unix socket in the same temp dir. As root, the server runs as the
    `postgres` user (initdb and postgres refuse root) and the dir is handed to that user."""

    user = "orders"
    password = "orders-test-password"

    def __init__(self, max_connections: int = 100, *, tls: bool = False) -> None:
        """tls: TCP connections may use TLS (a self-signed certificate), as RDS's do, so a client
        with sslmode=require connects; without it such a client is refused."""
        self.bin = postgres_bin_dir()
        assert self.bin is not None, missing_postgres()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="webstack-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.running = False
        self._as = ["runuser", "-u", _pg_os_user() or "postgres", "--"] if os.geteuid() == 0 else []
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as:
            user = pwd.getpwnam(self._as[2])
            for path in (self.dir, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._pg([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
                  "--locale=C"], timeout=120)
        self.options = (f"-c listen_addresses={HOST} -p {self.port} -k {self.dir} "
                        f"-c max_connections={max_connections} -c fsync=off -c synchronous_commit=off "
                        f"-c full_page_writes=off")
        if tls:
            self.options += " " + self._certificate()
        self.start()

    def _certificate(self) -> str:
        """A self-signed certificate and its key, readable by the server's user only (PostgreSQL
        refuses a key others can read); returns the server options that use them."""
        cert, key = self.dir / "server.crt", self.dir / "server.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", f"/CN={HOST}", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        key.chmod(0o600)
        if self._as:
            user = pwd.getpwnam(self._as[2])
            for path in (cert, key):
                os.chown(path, user.pw_uid, user.pw_gid)
        return f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def _pg(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        result = subprocess.run(self._as + argv, capture_output=True, text=True, timeout=timeout,
                                cwd=self.dir, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                               f"\n{self.log.read_text() if self.log.exists() else ''}")
        return result

    def start(self) -> None:
        self._pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", self.options,
                  "-w", "-t", "60", "start"], timeout=90)
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
                     timeout=90)
            self.running = False

    def close(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - last resort: kill the postmaster
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, dbname: str, *, password: bool = True) -> dict[str, str]:
        env = {"DATABASE_HOST": HOST, "DATABASE_PORT": str(self.port), "DATABASE_NAME": dbname,
               "DATABASE_USER": self.user, "DATABASE_SSLMODE": "disable"}
        if password:
            env["DATABASE_PASSWORD"] = self.password
        return env

    def psql(self, dbname: str, sql: str, timeout: float = 30) -> str:
        """Runs `sql` as the superuser; returns unaligned, tuples-only output."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", HOST,
             "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"})
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {result.stderr}")
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return name


# --- processes ---------------------------------------------------------------------------

def run_command(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 120
                ) -> subprocess.CompletedProcess:
    """A one-shot command (alembic) in the clean environment; bounded."""
    return subprocess.run(list(argv), env=base_env(env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def alembic(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_command(["alembic", *args], env, APP_DIR)


def uvicorn_argv(port: int, *, workers: int = 1, extra: Sequence[str] = ()) -> list[str]:
    """A plain `uvicorn orders_api.main:app` on 127.0.0.1 (the tests' own, not the kit's)."""
    return ["uvicorn", "orders_api.main:app", "--host", HOST, "--port", str(port),
            "--workers", str(workers), *extra]


def wait_until(check: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.1,
               popen: subprocess.Popen | None = None, name: str = "server",
               logs: Callable[[], str] | None = None) -> None:
    """Calls `check` every `interval` s until it holds (an OSError or HTTPException counts as not
    yet): TimeoutError after `timeout` s, RuntimeError as soon as `popen` (the process `name`)
    exits. Either error ends with the last of `logs()`."""

    def tail() -> str:
        return f":\n{logs()[-4000:]}" if logs else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            raise RuntimeError(f"{name} exited ({popen.returncode}) before {what}{tail()}")
        try:
            if check():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(interval)
    raise TimeoutError(f"no {what} within {timeout:.0f} s{tail()}")


def stop_process(popen: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
    """Stops a process started in a session of its own: `sig` (if it still runs), a wait of up to
    `timeout` s for it to exit, then SIGKILL to its whole process group (workers a killed parent
    left behind). Returns its exit status (None if it outlived even that)."""
    if popen.poll() is None:
        popen.send_signal(sig)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        popen.wait(5)
    except subprocess.TimeoutExpired:
        pass
    return popen.returncode


class Server:
    """Runs `argv` (a server on HOST:port) until stop(): waits until `ready_path` answers 200.

    `with Server(...) as s:` always stops it: SIGTERM to the server, a bounded wait for its
    graceful exit, then SIGKILL to its whole process group."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, port: int,
                 log_dir: Path, ready_path: str = "/healthz", ready_timeout: float = 60,
                 name: str = "server", ready_headers: Mapping[str, str] | None = None) -> None:
        self.argv, self.env, self.cwd, self.port = list(argv), base_env(env), cwd, port
        self.ready_path, self.ready_timeout, self.ready_headers = ready_path, ready_timeout, ready_headers
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.wait_until(lambda: self.get(self.ready_path, headers=self.ready_headers, timeout=2)[0] == 200,
                            self.ready_timeout,
                            f"{self.ready_path} answering 200")
        except BaseException:
            self.stop()
            raise

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(check, timeout, what, popen=self.proc, logs=self.logs)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return self.returncode
        self.returncode = stop_process(self.proc, timeout=timeout)
        self.proc = None
        return self.returncode

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists())

    def request(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None,
                timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection (so the kernel may hand it to any worker)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Connection": "close", **({"Content-Type": "application/json"} if data else {}), **(headers or {})}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, **kw)

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, **kw)
        return status, json.loads(data) if data else None


class Servers:
    """Servers a test starts, each waited for until ready, all stopped at the end (`stop_all`)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.started = log_dir, []

    def start(self, argv: Sequence[str], env: Mapping[str, str], *, port: int, cwd: Path,
              ready_path: str, ready_headers: Mapping[str, str] | None = None) -> Server:
        server = Server(argv, env=env, cwd=cwd, port=port, log_dir=self.log_dir, ready_path=ready_path,
                        name=f"server{len(self.started)}", ready_headers=ready_headers)
        self.started.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


def worker_pids(server_pid: int) -> set[int]:
    """Worker processes of the server `server_pid`: its children (Uvicorn's are spawned, Granian's
    forked), not the resource tracker that multiprocessing starts beside Uvicorn's."""
    pids = set()
    for pid in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.add(int(pid))
    return pids


def json_log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


# --- OpenTelemetry -----------------------------------------------------------------------

class OtlpReceiver:
    """tests/fastapi_app/otlp_receiver.py under .venv-app's python: POST /v1/traces on
    127.0.0.1; spans() reads what arrived, one dict per span."""

    def __init__(self, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.out = work_dir / "spans.jsonl"
        self.out.touch()
        self.proc = subprocess.Popen(
            [str(APP_BIN / "python"), str(Path(__file__).with_name("otlp_receiver.py")), "--out", str(self.out)],
            stdout=subprocess.PIPE, stderr=open(work_dir / "receiver.stderr", "wb"), stdin=subprocess.DEVNULL,
            env=base_env(), start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"OTLP receiver did not start: {(work_dir / 'receiver.stderr').read_text()}")
        self.port = int(line)
        self.endpoint = f"http://{HOST}:{self.port}"

    def spans(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if check(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- AWS Secrets Manager -----------------------------------------------------------------

class FakeSecretsManager:
    """Answers GetSecretValue (the AWS JSON protocol botocore speaks) on 127.0.0.1 with the
    current `secret`; counts the calls. Point boto3 at it with AWS_ENDPOINT_URL_SECRETS_MANAGER."""

    def __init__(self, arn: str, secret: dict[str, str]) -> None:
        self.arn, self.secret, self.calls = arn, dict(secret), 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.headers.get("X-Amz-Target") != "secretsmanager.GetSecretValue" \
                        or request.get("SecretId") != fake.arn:
                    self._reply(400, {"__type": "ResourceNotFoundException", "message": "no such secret"})
                    return
                fake.calls += 1
                self._reply(200, {"ARN": fake.arn, "Name": fake.arn.split(":")[-1],
                                  "SecretString": json.dumps(fake.secret), "VersionId": f"v{fake.calls}",
                                  "VersionStages": ["AWSCURRENT"], "CreatedDate": 1764000000.0})

            def _reply(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://{HOST}:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {"DATABASE_SECRET_ARN": self.arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint,
                "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --- Prometheus text ---------------------------------------------------------------------

def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of metric `name` in Prometheus text format: (labels, value)."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, labels = head.partition("{")
        if metric != name:
            continue
        parsed = {}
        for part in _split_labels(labels.rstrip("}")):
            key, _, val = part.partition("=")
            parsed[key] = val.strip('"')
        out.append((parsed, float(value)))
    return out


def _split_labels(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts


# --- the kit's rendered commands -----------------------------------------------------------

class RenderedRun:
    """One container's command as the kit renders it (`config/run/<Kind>-<name>.<container>.json`),
    made runnable on this machine by `local()` with a fixed, listed set of substitutions."""

    def __init__(self, render_dir: Path, path: Path) -> None:
        self.render_dir, self.path = render_dir, path
        self.doc = doc = json.loads(path.read_text())
        self.command: list[str] = list(doc.get("command") or [])
        self.args: list[str] = list(doc.get("args") or [])
        # name -> the plain value, or the reference ({"secret", "key"} or {"pod_field"}), in the
        # container's order (the render lists them in order, as the kubelet expands them).
        self.env: dict[str, Any] = {e["name"]: e["value"] if "value" in e else
                                    {k: v for k, v in e.items() if k not in ("name", "expands_to")}
                                    for e in doc.get("env") or []}
        self.files: dict[str, str] = dict(doc.get("files") or {})
        self.working_dir: str | None = doc.get("working_dir")

    @classmethod
    def find(cls, render_dir: Path, pattern: str) -> RenderedRun:
        matches = sorted((render_dir / "config" / "run").glob(pattern))
        assert len(matches) == 1, f"expected one {pattern} in {render_dir}/config/run, found {matches}"
        return cls(render_dir, matches[0])

    @property
    def argv(self) -> list[str]:
        return self.command + self.args

    def flag(self, name: str) -> str | None:
        argv = self.argv
        return argv[argv.index(name) + 1] if name in argv else None

    def empty_dirs(self) -> list[str]:
        """Writable emptyDir mount paths of this container (the pod's /tmp)."""
        return list(self.doc.get("empty_dirs") or [])

    def local(self, *, port: int | None, database: Mapping[str, str], scratch: Path,
              otlp_endpoint: str | None = None) -> tuple[list[str], dict[str, str], Path, list[str]]:
        """(argv, env, cwd, substitutions made). The substitutions, and nothing else:
        - `--host 0.0.0.0` -> 127.0.0.1, `--port` -> `port`;
        - each ConfigMap mount path -> the rendered config/<configmap>/ dir;
        - each emptyDir mount path (the pod's writable /tmp) -> a fresh dir under `scratch`;
        - env from a Secret, and the database address (DATABASE_HOST, DATABASE_PORT) ->
          `database` (the test PostgreSQL), by variable name;
        - env from the pod's own fields (downward API) -> POD_FIELD_STAND_INS, and their
          $(NAME) references in other values expanded, as the kubelet does;
        - OTEL_EXPORTER_OTLP_ENDPOINT -> `otlp_endpoint`; where the render exports no traces
          (OTEL_TRACES_EXPORTER=none, no endpoint), OTLP/HTTP to `otlp_endpoint` is switched on;
        - the working dir (null: the image's WORKDIR, /app) -> stacks/fastapi/app."""
        made: list[str] = []
        paths: dict[str, str] = {}
        for mount, configmap in self.files.items():
            paths[mount] = str(self.render_dir / "config" / configmap)
        for i, mount in enumerate(self.empty_dirs()):
            local = scratch / f"emptydir-{i}"
            local.mkdir(parents=True, exist_ok=True)
            paths[mount] = str(local)

        def relocate(value: str) -> str:
            for mount, local in sorted(paths.items(), key=lambda kv: -len(kv[0])):
                if value == mount or value.startswith(mount.rstrip("/") + "/"):
                    made.append(f"{mount} -> {local}")
                    return local + value[len(mount):]
            return value

        argv = [relocate(a) for a in self.argv]
        for flag, new in (("--host", HOST), ("--port", None if port is None else str(port))):
            if flag in argv and new is not None:
                i = argv.index(flag) + 1
                made.append(f"{flag} {argv[i]} -> {new}")
                argv[i] = new

        env: dict[str, str] = {}
        fields = {name: value["pod_field"] for name, value in self.env.items()
                  if isinstance(value, dict) and "pod_field" in value}
        for name, field in fields.items():
            env[name] = POD_FIELD_STAND_INS[field]
            made.append(f"{name} (pod field {field}) -> {env[name]}")
        for name, value in self.env.items():
            if name in fields:
                continue
            if isinstance(value, dict):
                assert name in database, f"{self.path.name}: {name} comes from Secret {value.get('secret')}; " \
                                         f"no test value for it"
                env[name] = database[name]
                made.append(f"{name} (secret {value.get('secret')}/{value.get('key')}) -> test value")
            elif name in ("DATABASE_HOST", "DATABASE_PORT") and name in database:
                env[name] = database[name]
                made.append(f"{name} {value} -> {database[name]}")
            else:
                env[name] = relocate(str(value))
                for ref in fields:
                    if f"$({ref})" in env[name]:
                        env[name] = env[name].replace(f"$({ref})", env[ref])
                        made.append(f"{name}: $({ref}) -> {env[ref]}")
        if otlp_endpoint is not None:
            if "OTEL_EXPORTER_OTLP_ENDPOINT" in env:
                made.append(f"OTEL_EXPORTER_OTLP_ENDPOINT {env['OTEL_EXPORTER_OTLP_ENDPOINT']} -> {otlp_endpoint}")
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
            elif env.get("OTEL_TRACES_EXPORTER") == "none":
                made.append(f"OTEL_TRACES_EXPORTER none -> otlp, OTEL_EXPORTER_OTLP_ENDPOINT -> {otlp_endpoint}")
                env |= {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        made.append(f"working_dir {self.working_dir or '(image WORKDIR)'} -> {APP_DIR}")
        return argv, env, APP_DIR, made
