"""The shop's URLs plus what the benchmark measures and the shop does not have:

- /io: a view that blocks 50 ms in a plain blocking call (`time.sleep`), the way a view waits on
  another service (an HTTP API, a payment provider) while using almost no CPU. Not a database
  wait: that would add a PostgreSQL round trip and PostgreSQL's CPU on the same cores, and tie
  the route to the database connections; the database has its own route.
- /products/<pk>: one product by primary key through the ORM, as JSON: one database read.
- /static/<path>: Django serving the collected static files itself (`django.views.static.serve`),
  what a team without a front server ships. Behind the kit's Nginx this URL is never reached:
  Nginx answers /static/ from the same directory.
"""

import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import include, path, re_path
from django.views.decorators.http import require_safe
from django.views.static import serve

from catalog.models import Product

IO_SECONDS = 0.05


@require_safe
def io(request: HttpRequest) -> JsonResponse:
    time.sleep(IO_SECONDS)
    return JsonResponse({"status": "ok"})


@require_safe
def product(request: HttpRequest, pk: int) -> JsonResponse:
    item = get_object_or_404(Product, pk=pk)
    return JsonResponse({"id": item.pk, "name": item.name, "price": str(item.price), "in_stock": item.in_stock})


urlpatterns = [
    path("io", io, name="bench-io"),
    path("products/<int:pk>", product, name="bench-product"),
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": settings.STATIC_ROOT}, name="bench-static"),
    path("", include("shop.urls")),
]
