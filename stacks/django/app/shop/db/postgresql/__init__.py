"""Database engine "shop.db.postgresql": Django's PostgreSQL backend plus PASSWORD_FILE (base.py)."""
