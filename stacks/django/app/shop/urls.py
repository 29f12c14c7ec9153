"""URLs: the catalog at /, the probes, /metrics and the admin at DJANGO_ADMIN_PATH."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

from catalog.views import ProductListView
from shop import views

urlpatterns = [
    path("", ProductListView.as_view(), name="product-list"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path(settings.ADMIN_PATH, admin.site.urls),
]
