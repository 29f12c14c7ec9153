"""DATABASE_PASSWORD_FILE: the password is read from the file at each new connection, so a
rotation (RDS changes it, the Secrets Store CSI driver rewrites the file) needs no restart."""

from __future__ import annotations

import os

from harness import HOST

from .shop_app import children, gunicorn_argv


def write_atomically(path, text: str) -> None:
    # The CSI driver swaps the file in whole: a reader never sees half a password.
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_rotated_password_is_used_by_the_next_connection_without_a_restart(serve, own_postgres, port, tmp_path):
    pg = own_postgres
    db = pg.create_database("rotating")
    pg.psql(db, "CREATE ROLE app_user LOGIN PASSWORD 'first-password'")
    password_file = tmp_path / "DATABASE_PASSWORD"
    write_atomically(password_file, "first-password\n")  # as the driver writes it: a final newline
    env = {"DATABASE_HOST": HOST, "DATABASE_PORT": str(pg.port), "DATABASE_NAME": db, "DATABASE_USER": "app_user",
           "DATABASE_SSLMODE": "disable", "DATABASE_PASSWORD_FILE": str(password_file),
           # Stale values the file must win over.
           "DATABASE_PASSWORD": "stale-password", "PGPASSWORD": "stale-password"}
    server = serve(gunicorn_argv(port), env, port=port)
    assert server.get("/readyz")[0] == 200
    workers = children(server.pid)

    # Rotation: the password changes in PostgreSQL. The open connection stays logged in...
    pg.psql(db, "ALTER ROLE app_user PASSWORD 'second-password'")
    assert server.get("/readyz")[0] == 200
    # ...until it ends (failover, CONN_MAX_AGE): a new login with the old file's password fails.
    pg.psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app_user'")
    assert server.get("/readyz")[0] == 503

    write_atomically(password_file, "second-password\n")
    assert server.get("/readyz")[0] == 200  # the next connection reads the new one
    assert children(server.pid) == workers  # same worker: nothing restarted
