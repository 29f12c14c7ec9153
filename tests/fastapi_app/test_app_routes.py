"""The reference app's routes against a real PostgreSQL, through a real Uvicorn."""

from __future__ import annotations

from harness import APP_DIR, Server, samples, uvicorn_argv


def test_items_round_trip_through_postgresql(serve, postgres, migrated, port):
    server = serve(uvicorn_argv(port), postgres.env(migrated), port=port)

    status, created = server.json("POST", "/items", {"name": "teapot", "description": "short, stout", "sku": "T-1"})
    assert status == 201
    assert created["id"] > 0 and created["created_at"]  # from the database (identity, now())
    assert postgres.psql(migrated, f"SELECT name, sku FROM items WHERE id = {created['id']}") == "teapot|T-1"

    assert server.json("GET", f"/items/{created['id']}") == (200, created)
    for n in range(3):
        server.json("POST", "/items", {"name": f"cup {n}"})
    status, page = server.json("GET", "/items?limit=2")
    assert status == 200 and [i["name"] for i in page] == ["teapot", "cup 0"]
    status, page = server.json("GET", f"/items?limit=2&after={page[-1]['id']}")
    assert [i["name"] for i in page] == ["cup 1", "cup 2"]


def test_missing_items_are_404_and_bad_input_is_422(serve, postgres, migrated, port):
    server = serve(uvicorn_argv(port), postgres.env(migrated), port=port)
    assert server.json("GET", "/items/424242")[0] == 404
    assert server.json("POST", "/items", {"name": ""})[0] == 422
    assert server.json("POST", "/items", {"name": "x", "colour": "red"})[0] == 422  # unknown field
    assert server.json("GET", "/items?limit=1000")[0] == 422


def test_requests_are_counted_by_route_template_not_raw_path(serve, postgres, migrated, port, tmp_path):
    env = {**postgres.env(migrated), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    server = serve(uvicorn_argv(port), env, port=port)
    for item_id in (1, 2, 3):
        server.get(f"/items/{item_id}")
    server.get("/wp-login.php")
    text = server.get("/metrics")[2].decode()
    counts = {(s["route"], s["status"]): v for s, v in samples(text, "http_requests_total")}
    assert counts[("/items/{item_id}", "404")] == 3
    assert counts[("<unmatched>", "404")] == 1
    assert not any("/items/1" == route for route, _ in counts)


def test_the_server_stops_with_a_clear_message_when_the_database_is_not_configured(tmp_path, app_venv, port):
    server = Server(uvicorn_argv(port), env={}, cwd=APP_DIR, port=port, log_dir=tmp_path, ready_timeout=30)
    try:
        server.start()
        raise AssertionError("the server started without a database configuration")
    except RuntimeError as exc:
        assert "database not configured: set DATABASE_URL, or DATABASE_HOST, DATABASE_NAME" in str(exc)
    finally:
        server.stop()
