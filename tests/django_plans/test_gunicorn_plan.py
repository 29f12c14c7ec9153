"""The Gunicorn plan of a Django pod: its arithmetic (workers, threads, database connections)
and the gunicorn.conf.py it renders, read by executing the file as Gunicorn does."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from components.k8s_pod import Resources
from stacks.django import nginx
from stacks.django.server import (CONF_FILE, CONFIG_DIR, MAX_THREADS, METRICS_DIR, RDS_RESERVED_CONNECTIONS,
                                  SOCKET_DIR, SOCKET_PATH, connections_needed, gunicorn_conf, instance_memory_gib,
                                  little_threads, max_connections, plan_gunicorn, worker_count)
from stacks.django.settings import GunicornServer
from stacks.telemetry import POD_FIELD_ENV, otel_env


def resources(cpu: str, memory: str) -> Resources:
    return Resources(cpu_request="100m", cpu_limit=cpu, memory_request="64Mi", memory_limit=memory)


@pytest.mark.parametrize("cpu, memory, workers, worker_memory, expected", [
    ("1", "512Mi", "auto", "128Mi", 1),
    ("500m", "512Mi", "auto", "128Mi", 1),
    ("2", "512Mi", "auto", "128Mi", 2),
    ("2500m", "1Gi", "auto", "128Mi", 2),  # whole cores only
    ("4", "512Mi", "auto", "128Mi", 3),  # (512 - 40) // 128: memory, not cores, decides
    ("4", "256Mi", "auto", "128Mi", 1),
    ("4", "160Mi", "auto", "128Mi", 1),  # holds none besides the master: still one
    ("8", "2Gi", "auto", "256Mi", 7),
    ("1", "512Mi", 3, "128Mi", 3),  # explicit: as given
])
def test_auto_workers_are_one_per_core_within_the_memory_limit(cpu, memory, workers, worker_memory, expected):
    server = GunicornServer(workers=workers, worker_memory=worker_memory)
    assert worker_count(server, resources(cpu, memory)) == expected


@pytest.mark.parametrize("cpu_ms, io_ms, threads, expected", [
    (2, 50, "auto", 26),  # the defaults: ceil(52 / 2)
    (3, 50, "auto", 18),
    (10, 10, "auto", 2),
    (50, 50, "auto", 2),
    (5, 0, "auto", 1),  # all CPU: one thread keeps the core busy
    (1, 50, "auto", MAX_THREADS),  # 51, capped
    (1, 10_000, "auto", MAX_THREADS),
    (2, 50, 4, 4),  # explicit: as given
    (2, 50, 64, 64),  # explicit, even above the cap
])
def test_auto_threads_follow_littles_law_up_to_the_cap(cpu_ms, io_ms, threads, expected):
    server = GunicornServer(request_cpu_ms=cpu_ms, request_io_ms=io_ms, threads=threads)
    assert little_threads(server) == expected


def test_the_default_request_profile_gives_26_threads():
    assert little_threads(GunicornServer()) == 26


@pytest.mark.parametrize("workers, threads, max_replicas, surge, expected", [
    (1, 26, 10, 25, 26 * (10 + 3) + 1),  # ceil(2.5) surge pods, and the release Job
    (2, 8, 3, 25, 2 * 8 * (3 + 1) + 1),
    (1, 1, 1, 25, 1 * (1 + 1) + 1),  # one replica still surges a whole pod
    (4, 32, 20, 25, 4 * 32 * (20 + 5) + 1),
    (1, 10, 4, 0, 10 * 4 + 1),
    (1, 10, 4, 100, 10 * 8 + 1),
])
def test_connections_count_every_thread_of_every_pod_during_a_rollout(workers, threads, max_replicas, surge,
                                                                       expected):
    assert connections_needed(workers, threads, max_replicas, surge_percent=surge) == expected


def test_connections_default_to_a_quarter_surge():
    assert connections_needed(1, 26, 10) == connections_needed(1, 26, 10, surge_percent=25)


@pytest.mark.parametrize("instance_class, gib", [
    ("db.t3.micro", 1), ("db.t4g.micro", 1), ("db.t4g.small", 2), ("db.t3.medium", 4), ("db.t4g.large", 8),
    ("db.t3.xlarge", 16), ("db.t4g.2xlarge", 32),
    ("db.m5.large", 8), ("db.m6g.xlarge", 16), ("db.m6i.2xlarge", 32), ("db.m7g.4xlarge", 64),
    ("db.m7i.12xlarge", 192), ("db.m8g.48xlarge", 768),
    ("db.r5.large", 16), ("db.r6g.xlarge", 32), ("db.r6i.2xlarge", 64), ("db.r7g.16xlarge", 512),
    ("db.r7i.large", 16), ("db.r8g.24xlarge", 768),
])
def test_instance_memory_by_family_and_size(instance_class, gib):
    assert instance_memory_gib(instance_class) == gib


@pytest.mark.parametrize("instance_class, expected", [
    # floor(GiB x 2^30 x 0.70 / 9531392), at most 5000, less the 3 + 2 reserved slots
    ("db.t4g.micro", 78 - 5),
    ("db.t3.small", 157 - 5),
    ("db.t4g.medium", 315 - 5),
    ("db.t3.large", 630 - 5),
    ("db.m6g.large", 630 - 5),
    ("db.r6g.large", 1261 - 5),
    ("db.t4g.2xlarge", 2523 - 5),
    ("db.m5.4xlarge", 5000 - 5),  # 5047: RDS caps the default at 5000
    ("db.r8g.2xlarge", 5000 - 5),
])
def test_rds_connections_the_app_may_open(instance_class, expected):
    assert max_connections(instance_class) == expected


@pytest.mark.parametrize("instance_class, reported", [
    # Defaults reported for classes of the same memory (the db.t2/m4 generation: 2, 4, 8 GiB).
    ("db.t3.small", 198), ("db.t3.medium", 413), ("db.t3.large", 856), ("db.m5.large", 856),
])
def test_rds_capacity_is_never_above_what_rds_was_seen_to_give(instance_class, reported):
    assert max_connections(instance_class) + RDS_RESERVED_CONNECTIONS <= reported


@pytest.mark.parametrize("instance_class", ["db.t2.micro", "db.t4g.nano", "db.x2g.large", "db.m5.metal",
                                            "db.m6gd.large", "db.r6g.0xlarge", "db.t3", "postgres", ""])
def test_an_unknown_instance_class_has_no_known_capacity(instance_class):
    assert max_connections(instance_class) is None


def plan(server: GunicornServer | None = None, *, threads: int = 26, otlp_endpoint: str | None = None):
    return plan_gunicorn(server or GunicornServer(wsgi_app="shop.wsgi:application"), resources("1", "512Mi"),
                         threads=threads, service_name="shop", environment="prod", otlp_endpoint=otlp_endpoint,
                         trace_sample_ratio=0.1)


def test_the_plan_runs_gunicorn_with_the_mounted_config():
    p = plan()
    assert p.command == ["gunicorn", "--config", f"{CONFIG_DIR}/{CONF_FILE}", "shop.wsgi:application"]
    assert list(p.files) == [CONF_FILE]
    assert (p.workers, p.threads) == (1, 26)


def test_the_plan_uses_the_threads_it_is_given():
    p = plan(threads=7)
    assert p.threads == 7
    assert "\nthreads = 7\n" in p.files[CONF_FILE]


@pytest.mark.parametrize("endpoint", [None, "http://collector.observability:4318/"])
def test_the_plan_has_the_same_telemetry_env_as_fastapi(endpoint):
    p = plan(otlp_endpoint=endpoint)
    same = otel_env(service_name="shop", environment="prod", otlp_endpoint=endpoint, trace_sample_ratio=0.1)
    assert {k: v for k, v in p.env.items() if k in same} == same
    assert p.pod_field_env == POD_FIELD_ENV
    assert p.env["OTEL_TRACES_EXPORTER"] == ("otlp" if endpoint else "none")


def test_probes_and_metrics_are_not_traced():
    assert plan().env["OTEL_PYTHON_DJANGO_EXCLUDED_URLS"] == "/healthz,/readyz,/metrics"


def test_metrics_get_a_writable_multiprocess_dir_and_none_without():
    on, off = plan(GunicornServer(metrics=True)), plan(GunicornServer(metrics=False))
    assert on.env["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR and on.writable_paths == [METRICS_DIR]
    assert "PROMETHEUS_MULTIPROC_DIR" not in off.env and off.writable_paths == []


# --- the rendered gunicorn.conf.py -------------------------------------------------------------

def conf(**overrides) -> str:
    values = dict(workers=2, threads=26, timeout_seconds=30, graceful_timeout_seconds=30, max_requests=5000,
                  max_requests_jitter=500, log_level="info") | overrides
    return gunicorn_conf(**values)


def load(text: str) -> dict:
    """The module namespace Gunicorn gets from the file."""
    namespace: dict = {"__file__": "gunicorn.conf.py", "__name__": "__config__"}
    exec(compile(text, "gunicorn.conf.py", "exec"), namespace)  # noqa: S102 (the file under test)
    return namespace


def test_the_conf_is_deterministic():
    assert conf() == conf()
    assert plan().files == plan().files


def test_gunicorn_listens_only_on_the_shared_socket():
    ns = load(conf())
    assert ns["bind"] == [f"unix:{SOCKET_PATH}"]
    assert ns["worker_tmp_dir"] == SOCKET_DIR  # heartbeats on the memory-backed emptyDir


@pytest.mark.parametrize("threads, worker_class", [(1, "sync"), (2, "gthread"), (26, "gthread")])
def test_threads_above_one_use_the_gthread_worker(threads, worker_class):
    assert load(conf(threads=threads))["worker_class"] == worker_class


def test_settings_reach_the_conf():
    ns = load(conf(workers=3, threads=4, timeout_seconds=45, graceful_timeout_seconds=20, max_requests=0,
                   max_requests_jitter=0, log_level="warning"))
    assert (ns["workers"], ns["threads"], ns["timeout"], ns["graceful_timeout"]) == (3, 4, 45, 20)
    assert (ns["max_requests"], ns["max_requests_jitter"], ns["loglevel"]) == (0, 0, "warning")
    assert ns["logconfig_dict"]["loggers"]["gunicorn.error"]["level"] == "WARNING"


def test_a_worker_accepts_no_more_connections_than_it_has_threads():
    ns = load(conf(threads=7))
    assert ns["worker_connections"] == 7


def test_only_nginxs_scheme_header_is_believed_and_no_tcp_peer_is_trusted():
    ns = load(conf())
    assert ns["secure_scheme_headers"] == {"X-FORWARDED-PROTO": "https"}
    assert ns["forwarder_headers"] == ""
    assert ns["forwarded_allow_ips"] == ""


def test_no_access_log_and_no_control_socket():
    ns = load(conf())
    assert ns["accesslog"] is None
    access = ns["logconfig_dict"]["loggers"]["gunicorn.access"]
    assert access["level"] == "CRITICAL" and access["propagate"] is False
    assert ns["control_socket_disable"] is True
    assert ns["preload_app"] is False


def test_an_unknown_log_level_is_refused():
    with pytest.raises(ValueError, match="log_level"):
        conf(log_level="verbose")


def format_record(ns: dict, **extra) -> dict:
    formatter = ns["logconfig_dict"]["formatters"]["json"]["()"]()
    record = logging.LogRecord("shop.orders", logging.WARNING, __file__, 1, "order %s failed", ("42",), None)
    record.__dict__.update(extra)
    return json.loads(formatter.format(record))


def test_log_records_are_json_lines_with_extras():
    entry = format_record(load(conf()), order_id=42)
    assert entry["level"] == "WARNING" and entry["logger"] == "shop.orders"
    assert entry["message"] == "order 42 failed" and entry["order_id"] == 42
    assert entry["time"].endswith("Z") and isinstance(entry["pid"], int)
    assert "trace_id" not in entry


def test_log_records_carry_the_exception():
    ns = load(conf())
    formatter = ns["logconfig_dict"]["formatters"]["json"]["()"]()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exc_info"]


def test_log_records_in_a_span_carry_its_trace_id():
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")  # not the global provider: nothing else changes
    with tracer.start_as_current_span("request") as span:
        entry = format_record(load(conf()))
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


def test_on_starting_removes_only_prometheus_files(tmp_path, monkeypatch):
    stale, other = tmp_path / "counter_12345.db", tmp_path / "notes.txt"
    stale.write_bytes(b"x")
    other.write_text("kept")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    load(conf())["on_starting"](None)
    assert not stale.exists() and other.exists()


def test_on_starting_creates_a_missing_metrics_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    load(conf())["on_starting"](None)
    assert (tmp_path / "prom").is_dir()


def test_hooks_do_nothing_without_their_packages_or_settings(monkeypatch):
    # This venv has no prometheus_client and no Django instrumentation; tracing is off.
    class Worker:
        pid = 12345

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    ns = load(conf())
    ns["child_exit"](None, Worker())
    ns["post_fork"](None, Worker())
    ns["post_worker_init"](Worker())
    ns["worker_exit"](None, Worker())
    assert ns["_tracer_provider"] is None
