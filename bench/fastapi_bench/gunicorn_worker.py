"""Gunicorn's Uvicorn worker with Uvicorn's access log off, for the Gunicorn setup tuned by hand.

uvicorn_worker.UvicornWorker leaves Uvicorn's access log on and hands its records to Gunicorn's
access logger, which drops them when Gunicorn has no access log (its default): each request still
builds a log record for nothing. Loop and parser named, not "auto", so nothing is left to chance."""

from __future__ import annotations

from uvicorn_worker import UvicornWorker


class QuietUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools", "access_log": False}
