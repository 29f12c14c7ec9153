"""Alembic environment: one connection, one transaction, under a lock.

- Same login as the app (DATABASE_URL or DATABASE_HOST/... and DATABASE_PASSWORD or
  DATABASE_SECRET_ARN), see orders_api/config.py.
- A session advisory lock: two release Jobs started at once (two `pulumi up`, a retried
  Job) apply migrations one after the other, never interleaved.
- `lock_timeout`: a migration that waits for a table lock behind a long transaction gives
  up after DATABASE_MIGRATION_LOCK_TIMEOUT (default 5s) instead of queueing every request
  of the running release behind it; the Job fails, the old pods keep serving, retry later.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text

from orders_api.database import create_migration_engine
from orders_api.models import Base

# Any constant unique to this app's migrations.
ADVISORY_LOCK_KEY = 0x6F72646572735F61  # "orders_a"

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for a DBA instead of running it."""
    from orders_api.config import database_config

    context.configure(url=database_config().url.render_as_string(hide_password=True),
                      target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_migration_engine()
    lock_timeout = os.environ.get("DATABASE_MIGRATION_LOCK_TIMEOUT", "5s")
    with engine.connect() as connection:
        connection.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": lock_timeout})
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
