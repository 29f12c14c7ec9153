"""Settings and URLs for bench/django_server.py: the shop as it is, plus one route that waits on I/O."""
