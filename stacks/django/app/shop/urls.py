"""URLs: the catalog at /, uploads and the sign-in they need, the probes, /metrics and the admin
at DJANGO_ADMIN_PATH."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from catalog import views as catalog_views
from catalog.views import ProductListView
from shop import media, views

urlpatterns = [
    path("", ProductListView.as_view(), name="product-list"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("uploads/", catalog_views.uploads, name="uploads"),
    path("uploads/<int:pk>", catalog_views.upload, name="upload"),
    # Links to uploads kept on a volume (no media bucket): signed, short-lived (shop/media.py).
    path("media/<str:token>/<str:filename>", media.serve, name="media"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path(settings.ADMIN_PATH, admin.site.urls),
]
