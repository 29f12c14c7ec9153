"""The machine's ceiling for an HTTP server under wrk: Debian's Nginx answering `return 200` from
memory, two workers pinned to the same cores as every other setup.

Nothing a Python server does per request can beat this on the same cores with the same wrk: the
report gives each setup's share of it. Keep-alive on (wrk's connections stay open, as they do from
a load balancer), no access log, no disk.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.serve.load import Options, Run, cpu_count, drain, measure, pinned

NGINX = "/usr/sbin/nginx"
BODY = '{"status":"ok"}'


def nginx_conf(port: int, work: Path, workers: int) -> str:
    temp = work / "nginx-temp"
    return f"""\
# The limit: a fixed body from memory (bench/serve/limits.py).
worker_processes {workers};
pid {work / 'nginx.pid'};
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            default_type application/json;
            return 200 '{BODY}';
        }}
    }}
}}
"""


def run(opts: Options, work: Path, log=print) -> list[Run]:
    from tests.fastapi_app.harness import free_port, stop_process  # the tests' bounded start and stop

    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} not found: apt-get install nginx (tools/setup does)")
    work.mkdir(parents=True, exist_ok=True)
    (work / "nginx-temp").mkdir(exist_ok=True)
    if os.geteuid() == 0:  # as root the workers run as nobody: their temp dir must be theirs
        os.chmod(work, 0o755)
        os.chmod(work / "nginx-temp", 0o777)
    port = free_port()
    conf = work / "nginx-limit.conf"
    conf.write_text(nginx_conf(port, work, cpu_count(opts)))
    argv = pinned([NGINX, "-e", "stderr", "-g", "daemon off;", "-c", str(conf)], opts)
    with open(work / "nginx-limit.log", "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not drain(f"http://127.0.0.1:{port}/", max_wait=15):
            raise RuntimeError(f"nginx did not start: {(work / 'nginx-limit.log').read_text()[-2000:]}")
        return measure(suite="limits", setup="nginx return 200", role="limit", route="trivial",
                       base_url=f"http://127.0.0.1:{port}", path="/", sessions=[proc.pid],
                       command=" ".join(argv), opts=opts, log=log)
    finally:
        stop_process(proc)
