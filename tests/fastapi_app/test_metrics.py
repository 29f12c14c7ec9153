"""/metrics with several Uvicorn workers: every worker's samples, added up, whichever worker
answers the scrape (prometheus_client multiprocess mode)."""

from __future__ import annotations

import os
import signal

from harness import samples, uvicorn_argv, worker_pids


def live_worker_series(server) -> set[int]:
    return {int(labels["pid"]) for labels, value in samples(server.get("/metrics")[2].decode(),
                                                            "app_worker_info") if value == 1}


def test_metrics_show_every_worker_and_sum_their_requests(serve, postgres, migrated, port, tmp_path):
    prom = tmp_path / "prom"
    server = serve(uvicorn_argv(port, workers=2), {**postgres.env(migrated), "PROMETHEUS_MULTIPROC_DIR": str(prom)},
                   port=port)
    server.wait_until(lambda: len(live_worker_series(server)) == 2, 30, "both workers in /metrics")
    assert live_worker_series(server) == worker_pids(server.pid)
    assert prom.is_dir()  # created by the app

    healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    before = healthz_count(server, healthz)

    # New connection per request: the kernel hands them to either worker. Send 40, then go
    # on until both have answered some (each worker's counters live in its counter_<pid>.db).
    sent = 0
    while sent < 40 or (sent < 1000 and len(list(prom.glob("counter_*.db"))) < 2):
        assert server.get("/healthz")[0] == 200
        sent += 1
    assert {int(p.stem.split("_")[1]) for p in prom.glob("counter_*.db")} == worker_pids(server.pid)

    for _ in range(3):  # any worker may answer the scrape: each sees the same total
        assert healthz_count(server, healthz) == before + sent


def healthz_count(server, key) -> float:
    counts = samples(server.get("/metrics")[2].decode(), "http_requests_total")
    return {tuple(sorted(labels.items())): v for labels, v in counts}.get(key, 0.0)

def test_a_killed_worker_leaves_metrics_and_its_replacement_joins(serve, postgres, migrated, port, tmp_path):
    prom = tmp_path / "prom"
    server = serve(uvicorn_argv(port, workers=2), {**postgres.env(migrated), "PROMETHEUS_MULTIPROC_DIR": str(prom)},
                   port=port)
    server.wait_until(lambda: len(live_worker_series(server)) == 2, 30, "both workers in /metrics")
    victim = min(worker_pids(server.pid))
    os.kill(victim, signal.SIGKILL)  # an OOM kill: no shutdown hook runs

    # Uvicorn starts a replacement; its startup drops the dead pid's live series.
    def replaced() -> bool:
        pids = worker_pids(server.pid)
        return len(pids) == 2 and victim not in pids and live_worker_series(server) == pids

    server.wait_until(replaced, 30, f"worker {victim} replaced in /metrics")


def test_stopped_workers_remove_their_live_series(serve, postgres, migrated, port, tmp_path):
    prom = tmp_path / "prom"
    server = serve(uvicorn_argv(port, workers=2), {**postgres.env(migrated), "PROMETHEUS_MULTIPROC_DIR": str(prom)},
                   port=port)
    server.wait_until(lambda: len(list(prom.glob("gauge_liveall_*.db"))) == 2, 30, "two live gauge files")
    assert server.stop() == 0
    assert list(prom.glob("gauge_liveall_*.db")) == []  # mark_process_dead at shutdown
