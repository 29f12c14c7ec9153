"""Probes: /healthz says the process answers (no dependency), /readyz says PostgreSQL does."""

from __future__ import annotations

import time

import harness
from harness import uvicorn_argv


def test_readyz_follows_the_database_and_healthz_does_not(serve, own_postgres, port):
    pg = own_postgres
    db = pg.create_database("ready")
    server = serve(uvicorn_argv(port), {**pg.env(db), "READY_TIMEOUT_SECONDS": "1"}, port=port)
    assert server.get("/readyz")[0] == 200

    pg.stop()
    start = time.monotonic()
    status, _, body = server.get("/readyz")
    assert status == 503, body
    assert time.monotonic() - start < 2.5  # inside the kubelet's 2 s probe timeout, with slack
    assert server.get("/healthz")[0] == 200  # a database outage must not restart the pods

    pg.start()
    # The pool's dead connections are replaced (pre-ping): ready again without a restart.
    server.wait_until(lambda: server.get("/readyz")[0] == 200, 20, "/readyz 200 after PostgreSQL came back")


def test_password_from_secrets_manager_is_read_again_after_rotation(serve, own_postgres, port):
    """DATABASE_SECRET_ARN: the login comes from the secret (as RDS manages it); after
    rotation, the first refused login makes the app read the secret again."""
    pg = own_postgres
    db = pg.create_database("rotating")
    pg.psql(db, "CREATE ROLE app_user LOGIN PASSWORD 'first-password'; GRANT ALL ON SCHEMA public TO app_user")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-orders-AbCdEf"
    secrets = harness.FakeSecretsManager(arn, {"username": "app_user", "password": "first-password"})
    try:
        env = {"DATABASE_HOST": harness.HOST, "DATABASE_PORT": str(pg.port), "DATABASE_NAME": db,
               "DATABASE_SSLMODE": "disable", **secrets.env()}
        migrate = harness.alembic(env, "upgrade", "head")
        assert migrate.returncode == 0, migrate.stderr
        server = serve(uvicorn_argv(port), env, port=port)
        assert server.json("POST", "/items", {"name": "before"})[0] == 201
        calls_before = secrets.calls

        # Rotation: the password changes in PostgreSQL and in the secret; the app's open
        # connections end (as after a failover), so it must log in again.
        pg.psql(db, "ALTER ROLE app_user PASSWORD 'second-password'")
        secrets.secret["password"] = "second-password"
        pg.psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app_user'")

        status, item = server.json("POST", "/items", {"name": "after"})
        assert status == 201, item
        assert secrets.calls == calls_before + 1  # read again once, not on every connection
        assert "reading secret" in server.logs()
    finally:
        secrets.close()
