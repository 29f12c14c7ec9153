"""Adds catalog_product.in_stock, NOT NULL DEFAULT true, the expand step of a column change.

The release Job runs this while pods of the previous release still serve, and their INSERTs
don't name the column: a database-side default (db_default, not Django's `default=`, which
only Django's own INSERTs would apply) fills it in for them. PostgreSQL 11+ adds a column
with a constant default without rewriting the table, so the migration holds its lock for
milliseconds whatever the table's size.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("catalog", "0001_create_product")]

    operations = [
        migrations.AddField(model_name="product", name="in_stock", field=models.BooleanField(db_default=True)),
    ]
