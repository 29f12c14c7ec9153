"""Django's PostgreSQL backend, reading the password from PASSWORD_FILE at every new connection,
and counting its open connections for the metrics.

When RDS rotates the password, the Secrets Store CSI driver rewrites that file; reading it on
each login (never caching it) lets running processes log in with the new one, no restart.
Open connections keep working: PostgreSQL checks the password only at login.

Each open connection is `db_client_connections_usage{state="used"}` (shop.metrics): +1 when one
is opened, -1 when it is closed. Django holds one connection per thread and no pool, so an open
connection is one in use; the dashboards set the sum over all pods against max_connections.
"""

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper

from shop import metrics


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if path := self.settings_dict.get("PASSWORD_FILE"):
            with open(path, encoding="utf-8") as file:
                params["password"] = file.read().rstrip("\r\n")  # a trailing newline is not part of it
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)  # raises when the login fails: nothing opened
        metrics.DB_USED.inc()
        return connection

    def _close(self):
        # Django calls this once per open connection (close() skips a wrapper whose connection is
        # already gone); the connection is gone afterwards even if closing it raised.
        opened = self.connection is not None
        try:
            return super()._close()
        finally:
            if opened:
                metrics.DB_USED.dec()
