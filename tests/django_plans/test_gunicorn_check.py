"""The rendered gunicorn.conf.py, read by a real Gunicorn: .venv-byo's (Django and Gunicorn only,
none of the kit's packages, no prometheus_client, no OpenTelemetry SDK) against the stock Django
project tests/byo_app/apps/notes."""

from __future__ import annotations

import subprocess

import pytest
from plans_harness import BASE_ENV, NOTES_APP, Proc, json_lines, request, wait_until

from stacks.django.server import gunicorn_conf

# What the notes project's settings read; the database is never reached by these tests.
NOTES_ENV = {"DJANGO_SECRET_KEY": "test-only-secret", "POD_IP": "127.0.0.1", "ALLOWED_HOSTS": "localhost",
             "DATABASE_URL": "postgres://notes:notes@127.0.0.1:9/notes"}


def render(scratch, **overrides) -> str:
    values = dict(workers=2, threads=26, timeout_seconds=30, graceful_timeout_seconds=30, max_requests=5000,
                  max_requests_jitter=500, log_level="info", socket_path=str(scratch / "gunicorn.sock"),
                  worker_tmp_dir=str(scratch)) | overrides
    path = scratch / "gunicorn.conf.py"
    path.write_text(gunicorn_conf(**values))
    return str(path)


@pytest.mark.parametrize("overrides", [
    {},
    {"workers": 1, "threads": 1, "log_level": "debug"},  # the sync worker
    {"workers": 4, "threads": 32, "max_requests": 0, "max_requests_jitter": 0, "log_level": "critical"},
    {"timeout_seconds": 600, "graceful_timeout_seconds": 300, "log_level": "warning"},
])
def test_gunicorn_accepts_the_conf(gunicorn_bin, scratch, overrides):
    conf = render(scratch, **overrides)
    result = subprocess.run([str(gunicorn_bin), "--check-config", "--config", conf, "mysite.wsgi:application"],
                            cwd=NOTES_APP, env={**BASE_ENV, "HOME": str(scratch), **NOTES_ENV},
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stock_django_project_runs_under_the_conf(gunicorn_bin, scratch):
    """Boots, answers on the socket only, logs JSON lines on stdout and no access log, and a
    restart finds its metrics dir emptied of the previous run's files."""
    metrics = scratch / "prom"
    metrics.mkdir()
    (metrics / "counter_99999.db").write_bytes(b"stale")
    conf = render(scratch, workers=2, threads=4)
    env = {"HOME": str(scratch), "PROMETHEUS_MULTIPROC_DIR": str(metrics), **NOTES_ENV}
    server = Proc("notes", [str(gunicorn_bin), "--config", conf, "mysite.wsgi:application"], log_dir=scratch,
                  env=env, cwd=NOTES_APP)
    socket_path = str(scratch / "gunicorn.sock")
    try:
        wait_until(lambda: request(socket_path, "/healthz", headers={"Host": "localhost"}).status == 200, 30,
                   "/healthz over the socket", server)
        assert request(socket_path, "/nope", headers={"Host": "localhost"}).status == 404
    finally:
        assert server.stop() == 0, server.logs()
    assert not (metrics / "counter_99999.db").exists()
    entries = json_lines(server.stdout_lines())
    messages = [e["message"] for e in entries]
    assert any(m.startswith("Listening at: unix:") for m in messages)
    assert any(e["logger"] == "django.request" and e["message"] == "Not Found: /nope" for e in entries)
    assert not any("GET /healthz" in m for m in messages), "an access log line"
    assert server.stderr.read_text() == ""


# Executes the conf as Gunicorn does and calls its logger's access() with a spy on the fields an
# access line is built from; prints how many times they were built.
ACCESS_SPY = """
import logging, runpy, sys, types
from gunicorn.glogging import Logger
conf = runpy.run_path(sys.argv[1])
logger_class = conf["logger_class"]
assert issubclass(logger_class, Logger), logger_class
built = []
class Spy(logger_class):
    def atoms(self, *args):
        built.append(args)
        return {}
spy = Spy.__new__(Spy)  # no setup(), which would configure this process's logging
# What Gunicorn's own logger reads to decide (27.0: any logconfig_dict turns the access log on).
spy.cfg = types.SimpleNamespace(accesslog=conf["accesslog"], logconfig=None, logconfig_dict=conf["logconfig_dict"],
                                logconfig_json=None, syslog=False, disable_redirect_access_to_syslog=False,
                                access_log_format="%(h)s")
spy.access_log = logging.getLogger("spy")
spy.access(None, None, {}, None)
print(len(built))
"""


def test_gunicorn_builds_no_access_log_line_it_would_drop(gunicorn_bin, scratch):
    """Any logconfig_dict turns Gunicorn's access log on, and it builds each request's fields before
    the silenced logger drops them (0.07 ms of CPU per request): the conf's logger never starts one."""
    python = gunicorn_bin.parent / "python"  # the same virtualenv as the Gunicorn under test
    result = subprocess.run([str(python), "-c", ACCESS_SPY, render(scratch)], env={**BASE_ENV, "HOME": str(scratch)},
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "0"
