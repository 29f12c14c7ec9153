"""Creates catalog_upload, the files users upload: a new table, so an additive step any running
release ignores (release N-1 never queries it).

The foreign key to auth_user briefly takes a SHARE ROW EXCLUSIVE lock on auth_user (PostgreSQL
locks the referenced table while it adds the constraint): no rows to check in a new table, so it
is held for milliseconds once granted. The release Job's lock_timeout bounds the wait for it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import catalog.models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0002_product_in_stock"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Upload",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("file", models.FileField(max_length=255, upload_to=catalog.models.upload_to)),
                ("content_type", models.CharField(max_length=100)),
                ("size", models.PositiveBigIntegerField()),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("owner", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="uploads",
                                            to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-created", "-id"]},
        ),
    ]
