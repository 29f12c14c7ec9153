"""Probes: /healthz says the process answers (no dependency), /readyz says PostgreSQL does."""

from __future__ import annotations

import time

from harness import free_port

from .shop_app import gunicorn_argv


def test_healthz_answers_without_a_database_and_readyz_does_not(serve, port):
    nowhere = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(free_port()), "DATABASE_NAME": "shop",
               "DATABASE_USER": "shop", "DATABASE_PASSWORD": "x", "DATABASE_SSLMODE": "disable"}
    server = serve(gunicorn_argv(port), nowhere, port=port)  # waits for /healthz 200
    status, _, body = server.get("/readyz")
    assert status == 503, body
    assert server.get("/healthz")[0] == 200
    assert "not ready: database check failed" in server.logs()


def test_readyz_follows_the_database_without_a_restart(serve, own_postgres, port):
    pg = own_postgres
    db = pg.create_database("ready")
    server = serve(gunicorn_argv(port), pg.env(db), port=port)
    assert server.get("/readyz")[0] == 200  # and the worker now holds a connection (CONN_MAX_AGE)

    pg.stop()
    start = time.monotonic()
    status, _, body = server.get("/readyz")
    assert status == 503, body
    assert time.monotonic() - start < 2.5  # inside the kubelet's probe timeout, with slack
    assert server.get("/healthz")[0] == 200  # a database outage must not restart the pods

    pg.start()
    # The dead connection is noticed (CONN_HEALTH_CHECKS) and replaced: ready again, same process.
    server.wait_until(lambda: server.get("/readyz")[0] == 200, 20, "/readyz 200 after PostgreSQL came back")
