from django.contrib import admin

from catalog.models import Product, Upload


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "in_stock", "created"]
    list_filter = ["in_stock"]
    search_fields = ["name"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Staff see who uploaded what; the file's link is a short-lived one, as users get."""

    list_display = ["__str__", "owner", "content_type", "size", "created"]
    list_select_related = ["owner"]
    search_fields = ["owner__username", "file"]
    readonly_fields = ["owner", "file", "content_type", "size", "created"]
