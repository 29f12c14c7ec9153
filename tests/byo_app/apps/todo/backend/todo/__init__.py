"""A small todo API: FastAPI, SQLAlchemy 2 and psycopg 3; its only setting is DATABASE_URL."""
