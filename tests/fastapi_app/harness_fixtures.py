"""Fixtures made from harness.py's servers, for every folder of tests that runs an app
(fastapi_app, django_app, byo_app): a throwaway PostgreSQL, a database in it, a free port.

A conftest imports the ones it uses; `postgres_fixture` makes a PostgreSQL fixture that is set up
after the app's venv fixture (a missing venv skips before a server starts). A missing PostgreSQL
skips with the reason; under CI (CI=true) it fails instead (harness.require).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from harness import Postgres, free_port, missing_postgres, require


def postgres_fixture(name: str, *, scope: str, after: str, doc: str):
    """A fixture called `name`, of `scope`, that yields a PostgreSQL of its own and always closes
    it, set up after the fixture called `after`; `doc` says who shares it."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Postgres]:
        request.getfixturevalue(after)
        require(missing_postgres())
        pg = Postgres()
        try:
            yield pg
        finally:
            pg.close()

    fixture.__doc__ = doc
    return pytest.fixture(fixture, scope=scope, name=name)


def postgres_fixtures(*, after: str):
    """An app's `postgres` and `own_postgres` (see their docs), each set up after the fixture
    called `after`, the app's venv: `postgres, own_postgres = postgres_fixtures(after="app_venv")`."""
    return (postgres_fixture("postgres", scope="session", after=after,
                             doc="One PostgreSQL for the session; each test gets its own database (`database`)."),
            postgres_fixture("own_postgres", scope="function", after=after,
                             doc="A PostgreSQL only this test uses (it may stop it)."))


@pytest.fixture
def database(postgres) -> str:
    """A fresh database in the session's PostgreSQL; returns its name."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def port() -> int:
    return free_port()
