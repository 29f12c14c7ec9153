"""Alembic environment: one connection, one transaction, under a lock.

- Same login as the app (DATABASE_URL or DATABASE_HOST/... and DATABASE_PASSWORD or
  DATABASE_SECRET_ARN), see orders_api/config.py.
- A session advisory lock: two release Jobs started at once (two `pulumi up`, a retried
  Job) apply migrations one after the other, never interleaved.
- No `lock_timeout` or `statement_timeout` here: the kit's release Job runs this under its
  migration guard, which sets both in PGOPTIONS (libpq, so psycopg applies them to this
  connection) from webstack:migrations, retries a lock timeout and names the blocker. One
  source of truth: a value here would override the kit's. Run by hand, give the same:
  PGOPTIONS="-c lock_timeout=5s -c statement_timeout=60s" alembic upgrade head
  The advisory lock below waits under that lock_timeout too, so a second Job started at
  once times out and is retried by its guard instead of waiting unbounded.
"""

from __future__ import annotations

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
    with engine.connect() as connection:
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
