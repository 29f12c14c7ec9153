"""Migrations, run as the release Job runs them (`python manage.py migrate --noinput` in the
app folder) against a real PostgreSQL."""

from __future__ import annotations

from .shop_app import manage, ok


def test_migrate_applies_every_migration_and_the_models_need_no_new_one(postgres, database):
    env = postgres.env(database)
    ok(manage(env, "migrate", "--noinput"))
    applied = postgres.psql(database, "SELECT name FROM django_migrations WHERE app = 'catalog' ORDER BY id")
    assert applied.split() == ["0001_create_product", "0002_product_in_stock", "0003_create_upload"]
    columns = postgres.psql(database, "SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'catalog_product' ORDER BY ordinal_position")
    assert columns.split() == ["id", "name", "price", "created", "in_stock"]

    # A model change without its migration would deploy code the schema doesn't match.
    check = manage(env, "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No changes detected" in check.stdout


def test_the_previous_release_can_still_insert_after_0002(postgres, database):
    """0002 is the expand step: pods of release N-1, whose INSERTs don't name in_stock, keep
    working while the new release rolls out."""
    env = postgres.env(database)
    ok(manage(env, "migrate", "--noinput", "catalog", "0001"))
    old_insert = "INSERT INTO catalog_product (name, price, created) VALUES ('{}', 9.50, now())"
    postgres.psql(database, old_insert.format("before"))

    ok(manage(env, "migrate", "--noinput"))
    postgres.psql(database, old_insert.format("during rollout"))
    rows = postgres.psql(database, "SELECT name, in_stock FROM catalog_product ORDER BY id")
    assert rows.splitlines() == ["before|t", "during rollout|t"]


def test_0002_can_be_rolled_back(postgres, database):
    env = postgres.env(database)
    ok(manage(env, "migrate", "--noinput"))
    ok(manage(env, "migrate", "--noinput", "catalog", "0001"))
    columns = postgres.psql(database, "SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'catalog_product'")
    assert "in_stock" not in columns.split()
