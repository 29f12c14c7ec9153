"""orders_api: the webstack reference FastAPI service.

A small, real service a team can copy: items in PostgreSQL (SQLAlchemy 2, psycopg 3, async),
Alembic migrations, liveness/readiness probes, Prometheus metrics that stay correct with
several worker processes, and OpenTelemetry traces whose ids appear in every log record.
Run it with `uvicorn orders_api.main:app` from the folder that holds this package.
"""
