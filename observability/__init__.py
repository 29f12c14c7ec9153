"""Prometheus, Grafana and OpenTelemetry for the kit's apps: components a platform team can use on
their own (`observability.components`), and the pure plans they render (alert rules, dashboards,
the collector's pipeline)."""
