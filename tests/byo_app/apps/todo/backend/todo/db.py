"""The database connection, from DATABASE_URL alone."""

import os

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


def database_url() -> str:
    """DATABASE_URL with psycopg 3 as the driver: SQLAlchemy reads a bare postgresql:// as
    psycopg2, which this app does not install."""
    url = os.environ["DATABASE_URL"]
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


engine = create_engine(database_url(), pool_pre_ping=True, pool_size=5)
Session = sessionmaker(engine, expire_on_commit=False)
