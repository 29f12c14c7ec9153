"""Real Nginx and Gunicorn on loopback for the Django pod's plans. Plain helpers (no fixtures).

Every server listens on 127.0.0.1 or a unix socket in a scratch dir, every wait is bounded, and
`Proc.stop()` always ends the process group (SIGTERM, a bounded wait, then SIGKILL).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastapi_app"))

import harness  # noqa: E402
from harness import stop_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BYO_GUNICORN = ROOT / ".venv-byo" / "bin" / "gunicorn"
NOTES_APP = ROOT / "tests" / "byo_app" / "apps" / "notes"
HOST = "127.0.0.1"
# What a pod's container gets, and nothing from the caller's shell (no stray OTEL_*).
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "OTEL_TRACES_EXPORTER": "none"}


def nginx_path() -> str | None:
    # Debian puts it in /usr/sbin, which is not on a non-root user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def nginx_run_as() -> tuple[int, int] | None:
    """(uid, gid) Nginx runs as: `nobody` when the tests run as root (a pod's containers run as a
    non-root uid, and Nginx has no `user` directive), else None (the caller's). KeyError: no `nobody`."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


def make_scratch() -> Path:
    """A short path (unix socket paths are limited to 108 bytes) that Nginx's user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="webstack-dj-"))
    path.chmod(0o755)
    return path


def give_to(path: Path, user: tuple[int, int] | None) -> Path:
    """Hands `path` to Nginx's user (as root), as a pod's emptyDir belongs to the pod's user."""
    if user is not None:
        os.chown(path, *user)
    return path


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None) -> None:
    """harness.wait_until, every 0.05 s; with `proc`, an error as soon as it exits, and its logs."""
    if proc is None:
        harness.wait_until(check, timeout, what, interval=0.05)
    else:
        harness.wait_until(check, timeout, what, interval=0.05, popen=proc.popen, name=proc.name, logs=proc.logs)


class Proc:
    """A server process in its own session; stdout and stderr to files in `log_dir`."""

    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, user: tuple[int, int] | None = None) -> None:
        self.name = name
        self.stdout = log_dir / f"{name}.stdout"
        self.stderr = log_dir / f"{name}.stderr"
        for path in (self.stdout, self.stderr):
            path.touch()
            # Nginx reopens /dev/stdout by path, so its user must own the file (runc likewise hands a
            # non-root container's stdio to the container's user).
            give_to(path, user)
        drop = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        with open(self.stdout, "ab") as out, open(self.stderr, "ab") as err:
            self.popen = subprocess.Popen(list(argv), env={**BASE_ENV, **(env or {})}, cwd=cwd, stdout=out,
                                          stderr=err, stdin=subprocess.DEVNULL, start_new_session=True, **drop)

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        return stop_process(self.popen, sig, timeout)

    def stdout_lines(self) -> list[str]:
        return [line for line in self.stdout.read_text(errors="replace").splitlines() if line.strip()]

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


class Response:
    def __init__(self, status: int, message: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.message, self.body = status, message, body

    def header(self, name: str) -> str | None:
        return self.message.get(name)

    def headers_named(self, name: str) -> list[str]:
        return self.message.get_all(name) or []

    def json(self):
        return json.loads(self.body)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def request(where: int | str, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None,
            body: bytes | None = None, timeout: float = 10) -> Response:
    """One request on a new connection: to 127.0.0.1:<where>, or to the unix socket at <where>."""
    conn = (http.client.HTTPConnection(HOST, where, timeout=timeout) if isinstance(where, int)
            else UnixHTTPConnection(where, timeout))
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        return Response(resp.status, resp.msg, resp.read())
    finally:
        conn.close()


def json_lines(lines: list[str]) -> list[dict]:
    """Each line parsed; a line that is not one JSON object fails the test with the line."""
    parsed = []
    for line in lines:
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


# The app behind Nginx in the smoke tests: it answers what it was told (its WSGI environ).
WSGI_APP = '''
import json
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        body, content_type = b"app_requests_total 1\\n", "text/plain; version=0.0.4"
    elif path == "/big":
        body, content_type = b"compress me please\\n" * 500, "text/plain"
    else:
        if path == "/slow":
            time.sleep(float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["1"])[0]))
        seen = {
            "path": path,
            "scheme": environ["wsgi.url_scheme"],
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "real_ip": environ.get("HTTP_X_REAL_IP"),
            "request_id": environ.get("HTTP_X_REQUEST_ID"),
            "host": environ.get("HTTP_HOST"),
            "forwarded_host": environ.get("HTTP_X_FORWARDED_HOST"),
            "forwarded_ssl": environ.get("HTTP_X_FORWARDED_SSL"),
            "script_name": environ.get("SCRIPT_NAME"),
        }
        body, content_type = json.dumps(seen).encode(), "application/json"
    # Django's SecurityMiddleware sends its own; Nginx must not let a second one through.
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                              ("X-Frame-Options", "SAMEORIGIN")])
    return [body]
'''
