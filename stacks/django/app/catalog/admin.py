from django.contrib import admin

from catalog.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "in_stock", "created"]
    list_filter = ["in_stock"]
    search_fields = ["name"]
