"""A bare WSGI app: a fixed JSON body for any request, no framework. Under the kit's Gunicorn
config behind the kit's Nginx it is the ceiling of the kit's serving path: whatever Django adds
per request comes on top of it."""

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
