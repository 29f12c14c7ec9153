"""Django's PostgreSQL backend, reading the password from PASSWORD_FILE at every new connection.

When RDS rotates the password, the Secrets Store CSI driver rewrites that file; reading it on
each login (never caching it) lets running processes log in with the new one, no restart.
Open connections keep working: PostgreSQL checks the password only at login.
"""

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if path := self.settings_dict.get("PASSWORD_FILE"):
            with open(path, encoding="utf-8") as file:
                params["password"] = file.read().rstrip("\r\n")  # a trailing newline is not part of it
        return params
