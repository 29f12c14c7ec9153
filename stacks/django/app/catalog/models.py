"""Products. Schema changes ship as expand/contract migrations (README: "Migrations")."""

from django.db import models


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
