"""The nginx.conf of the Nginx container in front of Gunicorn, and how that container stops.

Why Nginx is in the pod at all: Gunicorn gives each request a thread (a worker process with the
sync class) for as long as the request lasts, and a client on a slow link would hold that thread
while it trickles its body in or the response out. Nginx reads the whole request before it calls
Gunicorn and takes the whole response at memory speed (proxy_request_buffering, proxy_buffering),
so Gunicorn's threads only ever wait on the app. It also answers what needs no Python: its own
health check, the static files (target local), the 403 of the admin allowlist, the 404 of
/metrics on the public port, and one JSON access-log line per request.

Who is believed: X-Forwarded-For and X-Forwarded-Proto are taken from the load balancer's range
(`trusted_proxy_cidrs`) only. Nginx's realip module replaces the client address with the last
X-Forwarded-For entry that is not a trusted proxy; `$realip_remote_addr` keeps the address that
actually connected, and a `geo` on it decides whether the scheme the request claims is believed.
A client outside the range gets its own address logged and checked, and `$scheme` (http) as its
scheme, whatever headers it sends. Gunicorn, on the other side of the socket, trusts whatever
Nginx sends (a unix-socket peer always is: stacks/django/server.py), so Nginx sets or clears
every forwarding header itself.

Listens on IPv4 only: the pods of an IPv4 cluster have no IPv6 address to be reached on, and a
`listen [::]` fails Nginx's start (a crash loop) on a node booted with IPv6 disabled.

Runs as a non-root uid on a read-only root filesystem: no `user` directive (only root may switch
users), the pid file and every temporary file under TEMP_DIR (a writable emptyDir), logs on the
container's stdout/stderr.
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex

from components.types import parse_quantity

CONFIG_DIR = "/etc/webstack/nginx"
CONF_FILE = "nginx.conf"
# The pid file and request/response bodies too large for memory: a writable emptyDir.
TEMP_DIR = "/tmp/nginx"
PID_FILE = f"{TEMP_DIR}/nginx.pid"
# Answered by Nginx itself: the Nginx container's probes must not depend on the app.
HEALTH_PATH = "/_nginx/healthz"
# Target local: an init container collects the static files into this shared emptyDir.
STATIC_ROOT = "/var/www/static"
STATIC_URL_PATH = "/static/"
# Both Debian's nginx and the nginxinc images ship it there.
MIME_TYPES = "/etc/nginx/mime.types"

# Gunicorn's container sleeps this much longer than Nginx's in preStop: still accepting while
# Nginx forwards its last requests (the timeline is at stop_command).
GUNICORN_STOP_LAG_SECONDS = 2
# Client connections per Nginx worker; a proxied request holds two (client + Gunicorn).
WORKER_CONNECTIONS = 4096
# Slowloris bounds: the most a client may pause while sending headers, body, or reading the response.
CLIENT_HEADER_TIMEOUT_SECONDS = 10
CLIENT_BODY_TIMEOUT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30
# A request body up to this size stays in memory; larger ones go to a file under TEMP_DIR.
CLIENT_BODY_BUFFER = "64k"
# A response is held in memory up to 16 x 16k; beyond that it spills to TEMP_DIR, up to
# PROXY_MAX_TEMP_FILE per response (the emptyDir has a size limit; past it Nginx reads from
# Gunicorn only as fast as the client takes, which holds a thread but never fills the disk).
PROXY_BUFFERS = "16 16k"
PROXY_MAX_TEMP_FILE = "32m"
# Text worth compressing; text/html always is. Images, fonts (woff2) and archives already are.
GZIP_TYPES = ("application/atom+xml", "application/javascript", "application/json", "application/ld+json",
              "application/manifest+json", "application/rss+xml", "application/xml", "image/svg+xml",
              "text/css", "text/javascript", "text/plain", "text/xml")
# Hashed names (Django's manifest storage): a file's URL changes when its content does.
STATIC_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Browsers remember HTTPS for a year. No includeSubDomains: other hosts under the app's domain
# are not the kit's to force onto HTTPS.
HSTS = "max-age=31536000"

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_ADMIN_PATH = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*/$")


def worker_processes(cpu_limit: str) -> int:
    """One Nginx worker per core of the Nginx container's CPU limit (rounded up), at least one."""
    return max(1, math.ceil(parse_quantity(cpu_limit)))


def stop_command(prestop_delay_seconds: int, pid_path: str = PID_FILE,
                 conf_path: str = f"{CONFIG_DIR}/{CONF_FILE}") -> list[str]:
    """The Nginx container's preStop: wait, then quit gracefully and wait until Nginx is gone.

    SIGTERM, what the kubelet sends after preStop, makes Nginx exit at once and drop the requests
    in flight; SIGQUIT (`nginx -s quit`) stops accepting and exits when they are done, bounded by
    worker_shutdown_timeout. The timeline when a pod is deleted (D = prestop_delay_seconds):

        0        the pod leaves the Service's endpoints; the load balancer and kube-proxy stop
                 sending to it over the next seconds. Both containers run their preStop at once.
        D        Nginx stops accepting and finishes the requests it has: those it is still
                 reading from their client go to Gunicorn as soon as they are read.
        D+2      Gunicorn's preStop (D + GUNICORN_STOP_LAG_SECONDS) ends; the kubelet's SIGTERM
                 makes it stop accepting and finish what it has within graceful_timeout. (An
                 upload Nginx is still reading at D+2 gets a 502 when it completes.)
        <= D+2+graceful_timeout   Gunicorn's last responses reach Nginx and its clients (Nginx's
                 worker_shutdown_timeout is that long), this loop sees the pid gone, and the
                 kubelet's SIGTERM finds no Nginx.

    The pod's termination grace period must cover D + 2 + graceful_timeout (WebService derives it).
    """
    pid, conf = shlex.quote(pid_path), shlex.quote(conf_path)
    script = (f"sleep {int(prestop_delay_seconds)}; nginx -e stderr -s quit -c {conf}; "
              f'while [ -f {pid} ] && kill -0 "$(cat {pid})" 2>/dev/null; do sleep 1; done')
    return ["/bin/sh", "-c", script]


def nginx_conf(*, port: int, socket_path: str, metrics_port: int | None, admin_path: str,
               admin_allowed_cidrs: list[str], trusted_proxy_cidrs: list[str], client_max_body_size_mb: int,
               keep_alive_timeout_seconds: int, upstream_timeout_seconds: int, shutdown_timeout_seconds: int,
               https: bool, static_root: str | None, worker_processes: int,
               listen_address: str = "0.0.0.0", temp_dir: str = TEMP_DIR, mime_types: str = MIME_TYPES) -> str:
    """The whole nginx.conf (started as `nginx -e stderr -c <CONFIG_DIR>/<CONF_FILE>`).

    - port: the pod's HTTP port, where the load balancer and the probes come in.
    - socket_path: Gunicorn's unix socket.
    - metrics_port: a second listener serving only /metrics (Prometheus); None: none.
    - admin_path: the admin's URL prefix without the leading '/', e.g. "ops-7f3a/".
    - admin_allowed_cidrs: client addresses allowed on the admin path; empty: no restriction.
    - trusted_proxy_cidrs: the load balancer's range, whose X-Forwarded-For/-Proto are believed.
    - client_max_body_size_mb: largest request body, MiB (larger: 413).
    - keep_alive_timeout_seconds: idle client connections, seconds (above the ALB's 60 s).
    - upstream_timeout_seconds: how long Nginx waits on Gunicorn (its timeout plus a little).
    - shutdown_timeout_seconds: bound on a graceful quit (worker_shutdown_timeout).
    - https: the site is HTTPS at the load balancer: send Strict-Transport-Security.
    - static_root: serve STATIC_URL_PATH from this directory; None: the app serves it (or a CDN).
    - worker_processes: Nginx workers (worker_processes() of the container's CPU limit).
    - listen_address, temp_dir, mime_types: the pod's values by default.
    """
    for path in (socket_path, temp_dir, mime_types, *([static_root] if static_root else [])):
        _check_path(path)
    if not _ADMIN_PATH.match(admin_path):
        raise ValueError(f"admin_path {admin_path!r}: expected a URL prefix without the leading '/', "
                         "ending in '/', e.g. 'ops-7f3a/'")
    admin_cidrs = [_cidr(c) for c in admin_allowed_cidrs]
    trusted = [_cidr(c) for c in trusted_proxy_cidrs]
    try:
        listen_address = str(ipaddress.IPv4Address(listen_address))
    except ValueError:
        raise ValueError(f"listen_address {listen_address!r}: expected an IPv4 address (see the module docstring "
                         "for why not IPv6)") from None

    http = [
        _http_basics(mime_types, temp_dir, keep_alive_timeout_seconds, client_max_body_size_mb),
        _forwarding(trusted),
        _upstream(socket_path, upstream_timeout_seconds),
        _main_server(listen_address, port, _response_headers(https), admin_path, admin_cidrs, static_root),
    ]
    if metrics_port is not None:
        http.append(_metrics_server(listen_address, metrics_port))
    return ("# Rendered by webstack (stacks/django/nginx.py) from the stack's settings; change those, not this file.\n"
            + _main(worker_processes, temp_dir, shutdown_timeout_seconds)
            + "\nhttp {\n" + "\n".join(_indent(part) for part in http) + "}\n")


def _main(workers: int, temp_dir: str, shutdown_timeout: int) -> str:
    return f"""\
# In the foreground: Nginx is the container's process.
daemon off;
worker_processes {int(workers)};
pid {temp_dir}/nginx.pid;
error_log stderr warn;
# A graceful quit (preStop's `nginx -s quit`) closes what is still open after this long.
worker_shutdown_timeout {int(shutdown_timeout)}s;
# Two descriptors per proxied request, plus temp files; raised up to the hard limit the runtime allows.
worker_rlimit_nofile {2 * WORKER_CONNECTIONS};

events {{
    worker_connections {WORKER_CONNECTIONS};
}}
"""


def _http_basics(mime_types: str, temp_dir: str, keep_alive: int, body_mb: int) -> str:
    fields = {  # one JSON object per request; escape=json quotes what clients send
        "time": '"$time_iso8601"', "remote_addr": '"$remote_addr"', "method": '"$request_method"',
        "uri": '"$request_uri"', "protocol": '"$server_protocol"', "host": '"$host"', "status": "$status",
        "bytes": "$body_bytes_sent", "request_time": "$request_time",
        "upstream_response_time": '"$upstream_response_time"', "upstream_status": '"$upstream_status"',
        "request_id": '"$forwarded_request_id"', "user_agent": '"$http_user_agent"', "referer": '"$http_referer"',
    }
    log_format = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    temp_paths = "\n".join(f"{kind}_temp_path {temp_dir}/{kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""\
include {mime_types};
default_type application/octet-stream;
server_tokens off;
# Redirects Nginx makes itself (a directory without its '/') stay relative: it cannot know
# the scheme and port the client used at the load balancer.
absolute_redirect off;
sendfile on;
tcp_nopush on;

# Every file Nginx writes goes under {temp_dir} (the root filesystem is read-only).
{temp_paths}

log_format json escape=json '{log_format}';
access_log /dev/stdout json;

# Above the load balancer's 60 s idle timeout: the balancer, not Nginx, closes idle connections,
# so it never sends a request on a connection Nginx has just closed (a 502).
keepalive_timeout {int(keep_alive)}s;
# Slow or stalled clients are cut off, and their connection's memory freed at once.
client_header_timeout {CLIENT_HEADER_TIMEOUT_SECONDS}s;
client_body_timeout {CLIENT_BODY_TIMEOUT_SECONDS}s;
send_timeout {SEND_TIMEOUT_SECONDS}s;
reset_timedout_connection on;
client_max_body_size {int(body_mb)}m;
client_body_buffer_size {CLIENT_BODY_BUFFER};
# Headers with '_' (SCRIPT_NAME, ...) are dropped, not passed: Gunicorn's WSGI environ could not
# tell them from the ones with '-'. These are Nginx's defaults, stated because they matter here.
underscores_in_headers off;
ignore_invalid_headers on;

gzip on;
gzip_comp_level 5;
gzip_min_length 1024;
# The load balancer is a proxy too: compress for it, and say the response varies with Accept-Encoding.
gzip_proxied any;
gzip_vary on;
# HTML is compressed as well; Django masks its CSRF token anew in each response (the BREACH defence).
gzip_types {" ".join(GZIP_TYPES)};
"""


def _forwarding(trusted: list[str]) -> str:
    if trusted:
        realip = "\n".join(f"set_real_ip_from {c};" for c in trusted) + """
real_ip_header X-Forwarded-For;
# The client is the last address not in the trusted range: entries a client wrote before the
# load balancer appended its own view are skipped.
real_ip_recursive on;
"""
        geo_entries = "\n".join(f"    {c} 1;" for c in trusted) + "\n"
    else:
        realip = "# No trusted proxy: X-Forwarded-For is never believed.\n"
        geo_entries = ""
    return f"""\
# Whose X-Forwarded-* headers are believed: the load balancer's range only.
{realip}
# Whether the address that actually connected (before realip) is a trusted proxy. geo, not map:
# it matches CIDRs.
geo $realip_remote_addr $from_trusted_proxy {{
    default 0;
{geo_entries}}}
# The scheme the client used at the load balancer, believed only from a trusted proxy and only
# as one of the two values; anyone else gets the scheme of their own connection (http).
map "$from_trusted_proxy:$http_x_forwarded_proto" $forwarded_proto {{
    default $scheme;
    "1:https" https;
    "1:http" http;
}}
# A trusted proxy's request id (ingress-nginx sends one) ties both access logs together;
# otherwise Nginx's own.
map "$from_trusted_proxy:$http_x_request_id" $forwarded_request_id {{
    default $request_id;
    "~^1:(?<trusted_request_id>[A-Za-z0-9._-]{{1,128}})$" $trusted_request_id;
}}
# The Host the client sent, port included (Django builds absolute URLs from it); Nginx's own
# name when an HTTP/1.0 client sent none.
map $http_host $upstream_host {{
    default $http_host;
    "" $host;
}}
"""


def _upstream(socket_path: str, timeout: int) -> str:
    return f"""\
upstream gunicorn {{
    # A single server is never marked down (max_fails does not apply to it).
    server unix:{socket_path};
}}

# One request per connection to Gunicorn: kept-alive connections piled up on one gthread worker
# while the other idled (stacks/django/server.py); a unix-socket connect costs tens of microseconds.
# HTTP/1.1 for chunked (streamed) responses.
proxy_http_version 1.1;
proxy_set_header Connection "close";
proxy_set_header Host $upstream_host;
# The client address as realip established it, alone: an app reading the first or the last
# entry gets the same, unforgeable answer.
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-Proto $forwarded_proto;
proxy_set_header X-Request-ID $forwarded_request_id;
# Gunicorn trusts everything on its socket: headers that could claim another host, port or
# scheme are removed (an empty value is not sent).
proxy_set_header X-Forwarded-Host "";
proxy_set_header X-Forwarded-Port "";
proxy_set_header X-Forwarded-Ssl "";
proxy_set_header X-Forwarded-Protocol "";
proxy_set_header Forwarded "";
proxy_redirect off;

# The whole request is read before Gunicorn is called, and the response taken as fast as
# Gunicorn writes it: a slow client never holds a Gunicorn thread.
proxy_request_buffering on;
proxy_buffering on;
proxy_buffer_size 16k;
proxy_buffers {PROXY_BUFFERS};
proxy_busy_buffers_size 32k;
proxy_max_temp_file_size {PROXY_MAX_TEMP_FILE};
proxy_connect_timeout 5s;
proxy_send_timeout {int(timeout)}s;
proxy_read_timeout {int(timeout)}s;
# A reused connection Gunicorn closed just before the request is retried on a new one (not a
# POST, once sent); a request that timed out is never sent twice.
proxy_next_upstream error;
# Nginx sets these on every response; Django's copies would be duplicates.
proxy_hide_header X-Content-Type-Options;
proxy_hide_header X-Frame-Options;
proxy_hide_header Referrer-Policy;
proxy_hide_header Strict-Transport-Security;
"""


def _response_headers(https: bool) -> list[str]:
    """The security headers, and the request id a user can quote when reporting a problem."""
    headers = ['add_header X-Content-Type-Options "nosniff" always;',
               'add_header X-Frame-Options "DENY" always;',
               'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
               "add_header X-Request-ID $forwarded_request_id always;"]
    if https:
        headers.append(f'add_header Strict-Transport-Security "{HSTS}" always;')
    return headers


def _main_server(address: str, port: int, headers: list[str], admin_path: str, admin_cidrs: list[str],
                 static_root: str | None) -> str:
    lines = [
        "server {",
        f"    listen {address}:{int(port)} default_server;",
        "    server_name _;",
        "    # On every response, errors included (always). A location with add_header of its own",
        "    # inherits none of these, so such a location repeats them.",
        *(f"    {h}" for h in headers),
        "",
        f"    location = {HEALTH_PATH} {{",
        "        access_log off;",
        "        default_type text/plain;",
        '        return 200 "ok\\n";',
        "    }",
        "",
        "    # Prometheus scrapes the metrics port; the public never sees the app's metrics.",
        "    location = /metrics {",
        "        return 404;",
        "    }",
    ]
    if admin_cidrs:
        lines += [
            "",
            "    # The admin, from these client addresses only (after realip: the real client's).",
            f"    location ^~ /{admin_path} {{",
            *(f"        allow {c};" for c in admin_cidrs),
            "        deny all;",
            "        proxy_pass http://gunicorn;",
            "    }",
        ]
    if static_root:
        lines += [
            "",
            "    # Collected static files; a missing one is a 404 here, never a request to Django.",
            f"    location ^~ {STATIC_URL_PATH} {{",
            f"        alias {static_root.rstrip('/')}/;",
            f'        add_header Cache-Control "{STATIC_CACHE_CONTROL}";',
            *(f"        {h}" for h in headers),
            "    }",
        ]
    lines += [
        "",
        "    location / {",
        "        proxy_pass http://gunicorn;",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _metrics_server(address: str, port: int) -> str:
    return f"""\
# Prometheus only: /metrics of the app, nothing else. The namespace's network policy admits
# the scraper on this port; the load balancer never targets it.
server {{
    listen {address}:{int(port)};
    access_log off;

    location = /metrics {{
        proxy_pass http://gunicorn;
    }}

    location / {{
        return 404;
    }}
}}
"""


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.rstrip("\n").split("\n")) + "\n"


def _cidr(value: str) -> str:
    """A CIDR as Nginx's allow/geo/set_real_ip_from take it; refuses anything else (the config's syntax)."""
    return str(ipaddress.ip_network(value, strict=True))


def _check_path(path: str) -> None:
    if not _SAFE_PATH.match(path):
        raise ValueError(f"{path!r}: expected an absolute path of letters, digits and ._/- (it goes into nginx.conf)")
