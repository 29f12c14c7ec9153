"""The shop (stacks/django/app) as bench/serve/django_setups.py serves it: its own settings and URLs,
plus the routes a benchmark needs that the shop has no reason to have (bench/django_bench/urls.py),
and a bare WSGI app for the server's own ceiling (bare.py)."""
