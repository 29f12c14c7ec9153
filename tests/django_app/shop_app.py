"""Running the Django reference project (stacks/django/app) on loopback for its tests.

Django and the app's packages live in .venv-django (as in its image), not in the kit's .venv:
every `manage.py` command and server here is a subprocess under .venv-django's python, with a
clean environment (harness.base_env) plus the production-like values below. PostgreSQL,
server start/stop and the OTLP receiver are tests/fastapi_app/harness.py's.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import harness
from harness import HOST

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "stacks" / "django" / "app"
VENV = ROOT / ".venv-django"
BIN = VENV / "bin"
# 50+ characters, many distinct ones, no 'django-insecure-' prefix: what check --deploy wants.
SECRET_KEY = "t3st-only-Zq8vW2mN5pL0xR7cK4jH1gF6dS9aY3uE8iO2bT5nM0wQ"


def missing_venv() -> str | None:
    if not (BIN / "gunicorn").exists() or not (BIN / "django-admin").exists():
        return f"{VENV} has no gunicorn/django: run tools/setup (./tools/test does)"
    return None


def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Production-like settings (DEBUG off, a real secret key, Host 127.0.0.1 allowed) with
    .venv-django first on PATH; `extra` adds to them or overrides them."""
    return {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": HOST, **(extra or {})}


def manage(extra_env: Mapping[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python manage.py <args>` from the app folder, as the kit's release Job runs it."""
    return harness.run_command([str(BIN / "python"), "manage.py", *args], env(extra_env), APP_DIR, timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def gunicorn_argv(port: int, *, workers: int = 1, config: Path | None = None,
                  extra: Sequence[str] = ()) -> list[str]:
    """`gunicorn shop.wsgi:application` on 127.0.0.1 (the tests' own command, not the kit's)."""
    argv = [str(BIN / "gunicorn"), "shop.wsgi:application", "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--access-logfile", "-",
            # Gunicorn 27's control socket is one path in $HOME for every server (tests run several)
            # and a thread in the master; neither is under test here.
            "--no-control-socket"]
    if config is not None:
        argv += ["--config", str(config)]
    return argv + list(extra)


# The hooks the kit's rendered gunicorn.conf.py runs: tracing set up in each worker after the
# fork; a worker's live metric files removed when it exits.
KIT_HOOKS = '''
def post_fork(server, worker):
    from shop.telemetry import init_worker
    init_worker()


def child_exit(server, worker):
    import os
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # without it, mark_process_dead raises
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
'''


def kit_config(directory: Path) -> Path:
    path = directory / "gunicorn.conf.py"
    path.write_text(KIT_HOOKS)
    return path


def children(pid: int) -> set[int]:
    """Gunicorn's workers: the master's child processes."""
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads: line for {pid}")


def totp(key_hex: str, at: float | None = None) -> str:
    """The 6-digit, 30-second TOTP (RFC 6238, HMAC-SHA1) an authenticator app shows for this key."""
    counter = int((time.time() if at is None else at) // 30)
    mac = hmac.new(bytes.fromhex(key_hex), counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[offset:offset + 4], 'big') & 0x7FFFFFFF) % 1_000_000:06d}"


class Browser:
    """Keeps cookies across requests to one server, like a browser does; no redirects followed."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, form: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            hdrs = {"Connection": "close", **(headers or {})}
            if self.cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
        finally:
            conn.close()

    def get(self, path: str, **kw) -> tuple[int, dict[str, str], str]:
        return self.request("GET", path, **kw)

    def post_form(self, path: str, fields: Mapping[str, str], headers: Mapping[str, str] | None = None
                  ) -> tuple[int, dict[str, str], str]:
        """Loads the form at `path`, then posts `fields` with its CSRF token (and `headers`)."""
        status, _, page = self.get(path)
        assert status == 200, page[-2000:]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[-2000:]
        return self.request("POST", path, form={"csrfmiddlewaretoken": token.group(1), **fields}, headers=headers)
