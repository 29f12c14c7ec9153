"""shop: the webstack reference Django project (settings, URLs, WSGI entry point, probes)."""
