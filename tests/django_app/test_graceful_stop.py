"""A pod stopped the way the kubelet stops it loses no request.

The pod is django-local's, run as tests/byo_app/django_pod.py runs it (Nginx in front of
Gunicorn, the rendered files, commands and env). When a pod is deleted, the kubelet runs each container's preStop hook
at once and sends each container SIGTERM when its own hook has ended (SIGKILL at the grace
period), while the endpoint controller takes the pod out of the Service and the load balancer
stops sending to it a few seconds later. The kit's hooks (stacks/django/nginx.py stop_command):
Nginx's waits D seconds, then quits gracefully (`nginx -s quit`: stop accepting, finish what is
in flight) and waits until Nginx is gone; Gunicorn's sleeps D + 2, so Gunicorn still answers
Nginx's last requests when SIGTERM makes it drain.

The failure mode this prevents (test_sigterm_to_nginx_drops_the_requests_in_flight): without the
hook, the kubelet's SIGTERM reaches Nginx at once, and SIGTERM is Nginx's fast shutdown: its
workers exit and close every connection, so each request in flight gets no response at all (the
load balancer answers its client 502), however quickly Gunicorn would have answered it.

Requests in flight, deterministically: the real app's catalog page (`/`) counts the products, so
while this test holds an ACCESS EXCLUSIVE lock on their table every page request waits in the
database, as in a slow query; the test then knows which requests are in flight when each
process gets its signal.

Substitutions, besides tests/byo_app/django_pod.py's (Pod.substitutions lists each one):
- every duration of the stop is scaled by SCALE (1/10): Nginx's hook's `sleep D` -> `sleep D/10`
  (its paths as in django_pod: the rendered nginx.conf's copy, Nginx's temp dir), Gunicorn's
  preStop `sleep` seconds, the grace period both processes must exit within, and the load
  balancer's delay in removing the endpoint (ENDPOINT_REMOVAL_SECONDS); Gunicorn's
  graceful_timeout and Nginx's worker_shutdown_timeout stay as rendered (upper bounds, not waits);
"""

from __future__ import annotations

import http.client
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django_pod import NGINX_CONTAINER, Pod, rewrite
from harness import HOST, Postgres

from .kit_pod import local_pod

SCALE = 0.1
# How long the load balancer keeps sending after the pod is deleted (the ALB's target
# deregistration, or kube-proxy and ingress-nginx seeing the endpoint go): within the D = 15 s
# Nginx's hook waits, which is what that wait is for.
ENDPOINT_REMOVAL_SECONDS = 5
CLIENTS = 4
TABLE = "catalog_product"


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None
    error: str | None


@pytest.fixture(scope="module")
def prepared(django_venv, nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Pod]:
    """django-local's pod after its release Job and init container, not yet started."""
    with local_pod(tmp_path_factory.mktemp("render") / "django-local", nginx_bin, nginx_user) as (pod, _):
        yield pod


@pytest.fixture
def pod(prepared) -> Iterator[Pod]:
    """The pod's two containers, started afresh for each test (each test stops them)."""
    prepared.start()
    try:
        assert prepared.get("/", headers={"Host": prepared.service_host}).status == 200, prepared.gunicorn.logs()
        yield prepared
    finally:
        prepared.stop()


class TableLock:
    """ACCESS EXCLUSIVE on a table, held by a psql session until release(): every query on the
    table waits meanwhile."""

    def __init__(self, pg: Postgres, database: str, table: str) -> None:
        self.pg, self.database = pg, database
        self.proc = subprocess.Popen(
            [str(pg.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(pg.port), "-U", pg.user,
             "-d", database], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={"PGPASSWORD": pg.password, "PGCONNECT_TIMEOUT": "5", "PATH": "/usr/bin:/bin"})
        self.proc.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n\\echo locked\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "locked":
            self.release()
            raise RuntimeError(f"could not lock {table}: {line}")

    def waiting(self) -> int:
        """Sessions waiting on a lock in this database: requests in flight, held up."""
        return int(self.pg.psql(self.database, "SELECT count(*) FROM pg_stat_activity "
                                               "WHERE wait_event_type = 'Lock' AND datname = current_database()"))

    def release(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("COMMIT;\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


class LoadBalancer:
    """CLIENTS clients, each on a keep-alive connection, sending the catalog page to the pod back
    to back until stop_sending(), and recording each request's outcome. After stop_sending() no
    request starts (ingress-nginx and the ALB choose the target per request: once the endpoint
    is gone, neither a new nor a kept-alive connection carries another request to the pod); the
    requests already sent run to their end."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.outcomes: list[Outcome] = []
        self.sending = threading.Event()
        self.sending.set()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        while self.sending.is_set():
            started, status, error = time.monotonic(), None, None
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                conn.close()
            self.outcomes.append(Outcome(started, time.monotonic(), status, error))
        conn.close()

    def stop_sending(self) -> None:
        self.sending.clear()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a request never ended"


def failed(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.error is not None or o.status is None or o.status >= 500]


def test_sigterm_to_nginx_drops_the_requests_in_flight(pod):
    """What the kubelet would do without the kit's preStop hook: SIGTERM to Nginx at once."""
    lock = TableLock(pod.postgres, pod.app_env["DATABASE_NAME"], TABLE)
    try:
        balancer = LoadBalancer(pod.port, pod.service_host)
        balancer.stop_sending()  # one request per client, each to wait in the database
        deadline = time.monotonic() + 10
        while lock.waiting() < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.waiting() == CLIENTS
        pod.nginx.popen.send_signal(signal.SIGTERM)
        balancer.join(10)
    finally:
        lock.release()
    dropped = failed(balancer.outcomes)
    assert len(dropped) == len(balancer.outcomes) == CLIENTS, balancer.outcomes
    assert all(o.error and o.status is None for o in dropped), "each request got no response at all"
    assert pod.nginx.wait(5) == 0


def test_a_pod_stopped_as_the_kubelet_stops_it_fails_no_request(pod):
    spec = pod.render.pod_spec()
    hooks = {c["name"]: c["lifecycle"]["preStop"] for c in spec["containers"]}
    grace = spec["terminationGracePeriodSeconds"] * SCALE
    nginx_hook = nginx_stop_hook(pod, hooks[NGINX_CONTAINER]["exec"]["command"])
    delay = float(re.match(r"sleep ([0-9.]+);", nginx_hook[2])[1])  # D, scaled
    app_sleep = hooks["app"]["sleep"]["seconds"] * SCALE  # D + 2, scaled
    assert app_sleep > delay, "Gunicorn must still answer when Nginx forwards its last requests"
    removal = ENDPOINT_REMOVAL_SECONDS * SCALE
    assert removal < delay

    database = pod.app_env["DATABASE_NAME"]
    balancer = LoadBalancer(pod.port, pod.service_host)
    time.sleep(1.0)  # a steady stream first
    at: dict[str, float] = {}
    hook_result: list[subprocess.CompletedProcess] = []

    def nginx_container() -> None:
        hook_result.append(subprocess.run(nginx_hook, capture_output=True, text=True, timeout=60,
                                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                                          user=pod.nginx_user and pod.nginx_user[0]))
        kubelet_sigterm(pod.nginx.popen)
        pod.nginx.wait(60)
        at["nginx exited"] = time.monotonic()

    def app_container() -> None:
        time.sleep(app_sleep)  # the kubelet's own `sleep` action
        kubelet_sigterm(pod.gunicorn.popen)
        at["gunicorn signalled"] = time.monotonic()
        pod.gunicorn.wait(60)
        at["gunicorn exited"] = time.monotonic()

    stopped = time.monotonic()
    containers = [threading.Thread(target=f, daemon=True) for f in (nginx_container, app_container)]
    for thread in containers:
        thread.start()
    try:
        # Shortly before the endpoint is removed, the page's query starts to wait in the database:
        # the requests then in flight stay so until both processes have had their signal.
        time.sleep(removal - 0.2)
        lock = TableLock(pod.postgres, database, TABLE)
        try:
            wait_for(lambda: lock.waiting() == CLIENTS, delay - removal, "every client's request waiting")
            time.sleep(max(0.0, stopped + removal - time.monotonic()))
            balancer.stop_sending()
            at["endpoint removed"] = time.monotonic()
            wait_for(lambda: refuses(pod.port), grace, "Nginx to stop accepting (its quit)")
            at["nginx quit"] = time.monotonic()
            wait_for(lambda: "gunicorn signalled" in at, grace, "Gunicorn's SIGTERM")
            time.sleep(0.3)  # Gunicorn is draining
        finally:
            lock.release()
    finally:
        balancer.stop_sending()
    balancer.join(30)
    for thread in containers:
        thread.join(30)

    outcomes = balancer.outcomes
    assert not failed(outcomes), failed(outcomes)[:5]
    assert len(outcomes) > 20, "a steady stream"
    assert hook_result and hook_result[0].returncode == 0, hook_result
    # The order the hooks make: the load balancer stops, then Nginx stops accepting, then Gunicorn.
    assert at["endpoint removed"] < stopped + delay < at["nginx quit"] < at["gunicorn signalled"], at
    # The point of the test: requests in flight when Nginx quit and when Gunicorn got SIGTERM.
    held = [o for o in outcomes if o.started < at["endpoint removed"] and o.ended > at["gunicorn signalled"]]
    assert len(held) == CLIENTS, outcomes[-CLIENTS * 2:]
    for name in ("nginx exited", "gunicorn exited"):
        assert at[name] - stopped < grace, f"{name} {at[name] - stopped:.1f} s into the stop: past the grace period"
    assert pod.nginx.popen.returncode == 0 and pod.gunicorn.popen.returncode == 0
    assert any("Shutting down: Master" in line for line in pod.gunicorn.stdout_lines())


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.1f} s")
        time.sleep(0.02)


def refuses(port: int) -> bool:
    """Nothing listens on the port any more (a connection that is accepted is closed unused)."""
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def nginx_stop_hook(pod: Pod, command: list[str]) -> list[str]:
    """The Nginx container's rendered preStop command with its paths where the pod's are here
    (django_pod.rewrite: the config copy, the temp dir) and its `sleep D` scaled."""
    assert command[:2] == ["/bin/sh", "-c"], command
    mount, conf_copy = pod.config[NGINX_CONTAINER]
    script = rewrite(command[2], {**pod.mounts(NGINX_CONTAINER), mount: conf_copy}, {}, what="nginx preStop",
                     made=pod.substitutions)
    seconds = re.match(r"sleep ([0-9]+);", script)
    assert seconds, script
    scaled = f"sleep {int(seconds[1]) * SCALE:g};"
    pod.substitutions.append(f"nginx preStop: {seconds[0]} -> {scaled}")
    return [*command[:2], scaled + script[len(seconds[0]):]]


def kubelet_sigterm(popen: subprocess.Popen) -> None:
    """After a container's hook, the kubelet signals its main process, if it is still there."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)

