"""/metrics with several Gunicorn workers: every worker's counts, added up, whichever worker
answers the scrape (prometheus_client multiprocess mode)."""

from __future__ import annotations

from harness import samples

from .shop_app import children, gunicorn_argv, kit_config


def request_count(server, method: str, route: str, status: str) -> float:
    for labels, value in samples(server.get("/metrics")[2].decode(), "http_requests_total"):
        if labels == {"method": method, "route": route, "status": status}:
            return value
    return 0.0


def test_metrics_sum_the_requests_of_every_worker(serve, app_env, port, tmp_path):
    prom = tmp_path / "prom"
    server = serve(gunicorn_argv(port, workers=2, config=kit_config(tmp_path)),
                   {**app_env, "PROMETHEUS_MULTIPROC_DIR": str(prom)}, port=port)
    assert prom.is_dir()  # created by the app
    before = request_count(server, "GET", "/healthz", "200")

    # A new connection per request: the kernel hands each to either worker. Send 40, then go on
    # until both have answered some (each worker writes its own counter_<pid>.db).
    sent = 0
    while sent < 40 or (sent < 1000 and len(list(prom.glob("counter_*.db"))) < 2):
        assert server.get("/healthz")[0] == 200
        sent += 1
    assert {int(p.stem.split("_")[1]) for p in prom.glob("counter_*.db")} == children(server.pid)

    for _ in range(3):  # whichever worker answers the scrape, it reports the sum
        assert request_count(server, "GET", "/healthz", "200") == before + sent


def test_requests_are_labelled_by_route_not_by_path(serve, app_env, port, tmp_path):
    server = serve(gunicorn_argv(port), {**app_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, port=port)
    assert server.get("/")[0] == 200
    for path in ("/wp-login.php", "/.env", "/no/such/page"):
        assert server.get(path)[0] == 404
    assert request_count(server, "GET", "/", "200") == 1
    assert request_count(server, "GET", "<unmatched>", "404") == 3  # one series for every unknown path
    text = server.get("/metrics")[2].decode()
    assert "wp-login" not in text
    assert samples(text, "http_request_duration_seconds_count")


def test_without_a_multiprocess_dir_one_process_counts_in_memory(serve, app_env, port):
    server = serve(gunicorn_argv(port), app_env, port=port)
    server.get("/healthz")
    assert request_count(server, "GET", "/healthz", "200") >= 2  # the readiness wait's and ours
