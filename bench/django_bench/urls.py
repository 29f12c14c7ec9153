"""The shop's URLs plus /io: a view that waits 50 ms in PostgreSQL, the way a real view waits on a
slow query or another service, while using almost no CPU itself."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_safe

IO_SECONDS = 0.05


@require_safe
def io(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [IO_SECONDS])
        cursor.fetchone()
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("io", io, name="bench-io"),
    path("", include("shop.urls")),
]
