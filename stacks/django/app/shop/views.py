"""Probes and metrics: what the kubelet, the load balancer and Prometheus call."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from opentelemetry.instrumentation.utils import suppress_instrumentation

from shop import metrics as shop_metrics

log = logging.getLogger("shop")


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No dependency: a database outage must not restart pods."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: this worker can query PostgreSQL. 503 takes the pod out of the Service."""
    try:
        # Probes every few seconds would each start a one-query trace: not traced.
        with suppress_instrumentation(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure (refused, timeout, bad password) means "not ready"
        log.warning("not ready: database check failed: %s", type(exc).__name__, extra={"error": str(exc)[:500]})
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = shop_metrics.exposition()
    return HttpResponse(body, content_type=content_type)
