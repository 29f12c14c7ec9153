"""Trace ids on log records, so a log line leads to its trace (and back)."""

from __future__ import annotations

import logging

from opentelemetry import trace


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (hex, as trace backends show them) to each record logged
    while a span is active; the JSON formatter prints them as fields. Records outside a span
    get neither, rather than ids of zeros."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True
