"""Products, and files users upload. Schema changes ship as expand/contract migrations (README:
"Migrations")."""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.db import models
from django.utils.text import get_valid_filename

# Longest part of a client's file name kept in the stored name (the key is uploads/<32 hex>/<name>,
# within FileField's 255).
NAME_MAX = 100


class Product(models.Model):
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    created = models.DateTimeField(auto_now_add=True)
    # 0002 added this column while release N-1 was still running and inserting rows without
    # it: the default lives in the database (db_default), so those inserts still work.
    in_stock = models.BooleanField(db_default=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


def upload_to(instance: "Upload", filename: str) -> str:
    """uploads/<32 random hex>/<the client's file name, cleaned>: a name nobody can guess or list,
    and never one another upload has (on S3 a second file of the same name would replace the first,
    silently). The client's name stays last, so a download is saved under it."""
    stem, ext = os.path.splitext(get_valid_filename(os.path.basename(filename)) or "file")
    return f"uploads/{uuid.uuid4().hex}/{stem[:NAME_MAX]}{ext.lower()[:10]}"


class Upload(models.Model):
    """A file a signed-in user uploaded. Only its owner is given links to it (catalog/views.py)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to=upload_to, max_length=255)
    # The type the shop decided from the file's extension, never the one the client claimed.
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return os.path.basename(self.file.name)
