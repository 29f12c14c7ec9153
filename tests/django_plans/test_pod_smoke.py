"""The Django pod's two containers for real, on loopback: Debian's nginx with the rendered
nginx.conf in front of .venv-byo's Gunicorn with the rendered gunicorn.conf.py, over a unix
socket in a scratch dir. The app is a small WSGI app that answers with what it was told.

Two Nginx configs share the one Gunicorn:
- `edge`: the load balancer is 10.0.0.0/8, so this test's client (127.0.0.1) is an untrusted
  client; the admin allows 10.1.0.0/16 only; metrics port, static root, HTTPS (HSTS).
- `behind`: the load balancer is 127.0.0.1/32, so this client plays the load balancer and its
  X-Forwarded-For is believed; the admin allows 127.0.0.1/32; no metrics port, no static root.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import free_port
from plans_harness import WSGI_APP, Proc, give_to, json_lines, make_scratch, request, wait_until

from stacks.django import nginx
from stacks.django.server import gunicorn_conf

ADMIN = "ops-7f3a/"
CLIENT = "203.0.113.7"  # a public address a client claims, or the load balancer reports


class Pod:
    def __init__(self, root: Path, nginx_bin: str, gunicorn_bin: Path, user) -> None:
        self.root, self.nginx_bin, self.gunicorn_bin, self.user = root, nginx_bin, gunicorn_bin, user
        self.socket_dir = root / "gunicorn"
        self.socket_dir.mkdir(mode=0o755)
        self.socket = str(self.socket_dir / "gunicorn.sock")
        self.static = root / "static"
        (self.static / "css").mkdir(parents=True, mode=0o755)
        self.static.chmod(0o755)
        (self.static / "css" / "site.3f2a9c.css").write_text("body { color: #333 }\n")
        self.procs: list[Proc] = []

    def nginx(self, name: str, **overrides) -> tuple[Proc, int, Path]:
        port = free_port()
        temp = self.root / f"{name}-tmp"
        temp.mkdir(mode=0o755)
        give_to(temp, self.user)
        values = dict(port=port, socket_path=self.socket, metrics_port=None, admin_path=ADMIN,
                      admin_allowed_cidrs=[], trusted_proxy_cidrs=[], client_max_body_size_mb=1,
                      keep_alive_timeout_seconds=75, upstream_timeout_seconds=35, shutdown_timeout_seconds=10,
                      https=False, static_root=None, worker_processes=1, listen_address="127.0.0.1",
                      temp_dir=str(temp)) | overrides
        conf = self.root / f"{name}.conf"
        conf.write_text(nginx.nginx_conf(**values))
        proc = Proc(name, [self.nginx_bin, "-e", "stderr", "-c", str(conf)], log_dir=self.root, user=self.user)
        self.procs.append(proc)
        wait_until(lambda: request(port, nginx.HEALTH_PATH).status == 200, 15, f"{name} health", proc)
        return proc, port, conf

    def gunicorn(self) -> Proc:
        app_dir = self.root / "app"
        app_dir.mkdir(mode=0o755)
        (app_dir / "smoke_app.py").write_text(WSGI_APP)
        conf = app_dir / "gunicorn.conf.py"
        conf.write_text(gunicorn_conf(workers=1, threads=8, timeout_seconds=30, graceful_timeout_seconds=10,
                                      max_requests=0, max_requests_jitter=0, log_level="info",
                                      socket_path=self.socket, worker_tmp_dir=str(self.socket_dir)))
        proc = Proc("gunicorn", [str(self.gunicorn_bin), "--config", str(conf), "smoke_app:application"],
                    log_dir=self.root, cwd=app_dir, env={"HOME": str(app_dir)})
        self.procs.append(proc)
        wait_until(lambda: request(self.socket, "/ready").status == 200, 30, "gunicorn on its socket", proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture(scope="module")
def pod(nginx_bin, gunicorn_bin, nginx_user):
    root = make_scratch()
    pod = Pod(root, nginx_bin, gunicorn_bin, nginx_user)
    try:
        pod.metrics_port = free_port()
        pod.edge, pod.edge_port, _ = pod.nginx(
            "edge", trusted_proxy_cidrs=["10.0.0.0/8"], admin_allowed_cidrs=["10.1.0.0/16"],
            metrics_port=pod.metrics_port, static_root=str(pod.static), https=True)
        # Nginx alone, before Gunicorn is up: its health check answers, the app's paths do not.
        pod.health_before_app = request(pod.edge_port, nginx.HEALTH_PATH)
        pod.app_before_app = request(pod.edge_port, "/")
        pod.behind, pod.behind_port, _ = pod.nginx(
            "behind", trusted_proxy_cidrs=["127.0.0.1/32"], admin_allowed_cidrs=["127.0.0.1/32"])
        pod.app = pod.gunicorn()
        yield pod
    finally:
        pod.stop()
        shutil.rmtree(root, ignore_errors=True)


def access_log(proc: Proc, request_id: str) -> dict:
    """Nginx's JSON line for one request (written just after the response: polled, bounded)."""
    def line() -> dict | None:
        return next((e for e in json_lines(proc.stdout_lines()) if e["request_id"] == request_id), None)

    wait_until(lambda: line() is not None, 5, f"the access log line of {request_id}")
    return line()


def test_nginx_answers_its_health_check_without_the_app(pod):
    assert pod.health_before_app.status == 200 and pod.health_before_app.body == b"ok\n"
    assert pod.app_before_app.status == 502


def test_a_request_through_nginx_reaches_the_app_and_is_logged_as_json(pod):
    resp = request(pod.edge_port, "/orders?page=2", headers={"User-Agent": "smoke/1", "Referer": "https://x.test/"})
    assert resp.status == 200
    seen = resp.json()
    assert seen["path"] == "/orders"
    request_id = resp.header("X-Request-ID")
    assert request_id and re.fullmatch(r"[0-9a-f]{32}", request_id) and seen["request_id"] == request_id
    line = access_log(pod.edge, request_id)
    assert line["remote_addr"] == "127.0.0.1" and line["status"] == 200 and line["method"] == "GET"
    assert line["uri"] == "/orders?page=2" and line["user_agent"] == "smoke/1" and line["referer"] == "https://x.test/"
    assert isinstance(line["request_time"], float | int) and line["upstream_status"] == "200"


def test_forwarding_headers_from_an_untrusted_client_are_not_believed(pod):
    resp = request(pod.edge_port, "/", headers={
        "X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test",
        "X-Forwarded-Ssl": "on", "X-Request-ID": "chosen-by-client"})
    seen = resp.json()
    assert seen["forwarded_for"] == "127.0.0.1" and seen["real_ip"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["forwarded_host"] is None and seen["forwarded_ssl"] is None
    assert seen["request_id"] != "chosen-by-client"
    assert access_log(pod.edge, seen["request_id"])["remote_addr"] == "127.0.0.1"


def test_forwarding_headers_from_the_trusted_proxy_are_believed(pod):
    resp = request(pod.behind_port, "/", headers={
        "X-Forwarded-For": f"198.51.100.9, {CLIENT}", "X-Forwarded-Proto": "https", "X-Request-ID": "lb-abc-123"})
    seen = resp.json()
    # The last address the trusted proxy did not add itself: the client it saw.
    assert seen["forwarded_for"] == CLIENT and seen["scheme"] == "https"
    assert seen["request_id"] == "lb-abc-123" == resp.header("X-Request-ID")
    assert access_log(pod.behind, "lb-abc-123")["remote_addr"] == CLIENT


def test_headers_with_underscores_never_reach_the_app(pod):
    assert request(pod.edge_port, "/", headers={"SCRIPT_NAME": "/evil"}).json()["script_name"] == ""


def test_the_admin_is_refused_outside_the_allowlist(pod):
    refused = request(pod.edge_port, f"/{ADMIN}login/")
    assert refused.status == 403 and b"path" not in refused.body  # Nginx's page, not the app's JSON
    assert request(pod.behind_port, f"/{ADMIN}login/").json()["path"] == f"/{ADMIN}login/"
    # Through the trusted proxy, the client it reports is what is checked.
    assert request(pod.behind_port, f"/{ADMIN}", headers={"X-Forwarded-For": CLIENT}).status == 403


def test_metrics_are_served_on_the_metrics_port_only(pod):
    assert request(pod.edge_port, "/metrics").status == 404
    scraped = request(pod.metrics_port, "/metrics")
    assert scraped.status == 200 and scraped.body == b"app_requests_total 1\n"
    assert request(pod.metrics_port, "/").status == 404


@pytest.mark.parametrize("path, status", [("/", 200), (f"/{ADMIN}", 403), ("/metrics", 404),
                                          ("/static/css/site.3f2a9c.css", 200), ("/static/missing.css", 404)])
def test_security_headers_are_on_every_response(pod, path, status):
    resp = request(pod.edge_port, path)
    assert resp.status == status
    assert resp.headers_named("X-Frame-Options") == ["DENY"]  # the app's SAMEORIGIN is hidden
    assert resp.headers_named("X-Content-Type-Options") == ["nosniff"]
    assert resp.headers_named("Referrer-Policy") == ["strict-origin-when-cross-origin"]
    assert resp.headers_named("Strict-Transport-Security") == [nginx.HSTS]
    assert resp.header("Server") == "nginx"  # no version, no gunicorn


def test_no_hsts_when_the_site_is_not_https(pod):
    assert request(pod.behind_port, "/").header("Strict-Transport-Security") is None


def test_static_files_are_served_by_nginx_with_a_long_cache(pod):
    found = request(pod.edge_port, "/static/css/site.3f2a9c.css")
    assert found.status == 200 and found.body == b"body { color: #333 }\n"
    assert found.header("Cache-Control") == nginx.STATIC_CACHE_CONTROL
    missing = request(pod.edge_port, "/static/missing.css")
    assert missing.status == 404 and missing.header("Cache-Control") is None
    assert b"path" not in missing.body  # not the app's answer


def test_text_is_compressed(pod):
    resp = request(pod.edge_port, "/big", headers={"Accept-Encoding": "gzip"})
    assert resp.header("Content-Encoding") == "gzip" and resp.header("Vary") == "Accept-Encoding"
    assert gzip.decompress(resp.body) == b"compress me please\n" * 500


def test_a_body_above_the_limit_is_refused_by_nginx(pod):
    assert request(pod.edge_port, "/upload", method="POST", body=b"x" * (2 * 2**20)).status == 413


def test_gunicorn_logs_json_lines_and_no_access_log(pod):
    entries = json_lines(pod.app.stdout_lines())
    assert any(e["message"].startswith("Listening at: unix:") for e in entries)
    assert not any("GET /" in e["message"] for e in entries)


def test_the_stop_command_lets_in_flight_requests_finish(pod, nginx_user):
    proc, port, conf = pod.nginx("stopping")
    pid_file = Path(re.search(r"pid (\S+);", conf.read_text())[1])
    results: list = []
    slow = threading.Thread(target=lambda: results.append(request(port, "/slow?s=1.5", timeout=20)))
    slow.start()
    time.sleep(0.5)  # the request is in flight
    started = time.monotonic()
    stop = subprocess.run(nginx.stop_command(0, str(pid_file), str(conf)), capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, user=nginx_user and nginx_user[0])
    slow.join(20)
    assert stop.returncode == 0, stop.stderr
    assert proc.exited() and not pid_file.exists()
    assert results and results[0].status == 200, "the in-flight request was dropped"
    assert time.monotonic() - started >= 0.8, "the stop command returned before Nginx had finished"
    with pytest.raises(OSError):  # and no longer accepts
        request(port, nginx.HEALTH_PATH, timeout=2)
