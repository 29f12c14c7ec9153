"""The WSGI entry point: `gunicorn shop.wsgi:application`.

Importing this starts no thread and opens no connection, so a pre-fork server may import it
in its master (`--preload`). Tracing: `telemetry.instrument()` must run before Django loads
its middleware (below); the tracer provider is made per worker, by the server's post_fork
hook or else by the first request this process serves (shop/telemetry.py says which when).
"""

import os

from django.core.wsgi import get_wsgi_application

from shop import telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
telemetry.instrument()
django_application = get_wsgi_application()


def application(environ, start_response):
    if not telemetry.initialised():  # one comparison per request once done
        telemetry.init_worker()
    return django_application(environ, start_response)
