"""The Nginx container's plan: its nginx.conf (read as text, and checked by `nginx -t`) and its
preStop command."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest
from plans_harness import give_to

from stacks.django import nginx
from stacks.django.server import SOCKET_PATH


def render(**overrides) -> str:
    values = dict(port=8080, socket_path=SOCKET_PATH, metrics_port=9000, admin_path="ops-7f3a/",
                  admin_allowed_cidrs=["203.0.113.0/24"], trusted_proxy_cidrs=["10.0.0.0/16"],
                  client_max_body_size_mb=10, keep_alive_timeout_seconds=75, upstream_timeout_seconds=35,
                  shutdown_timeout_seconds=32, https=True, static_root=None, worker_processes=1) | overrides
    return nginx.nginx_conf(**values)


def directives(text: str, name: str) -> list[str]:
    """The arguments of every `name ...;` directive, comments left out."""
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^\s*{re.escape(name)}\s+([^;{{}}]*);", code)]


@pytest.mark.parametrize("cpu_limit, expected", [("100m", 1), ("500m", 1), ("1", 1), ("1500m", 2), ("2", 2),
                                                 ("4", 4)])
def test_one_nginx_worker_per_core_rounded_up(cpu_limit, expected):
    assert nginx.worker_processes(cpu_limit) == expected


def test_the_conf_is_deterministic():
    assert render() == render()


def test_nginx_runs_in_the_foreground_as_the_containers_user():
    text = render()
    assert directives(text, "daemon") == ["off"]
    assert directives(text, "user") == []
    assert directives(text, "error_log") == ["stderr warn"]
    assert directives(text, "access_log")[0] == "/dev/stdout json"


def test_every_file_nginx_writes_is_under_the_temp_dir():
    text = render()
    assert directives(text, "pid") == [f"{nginx.TEMP_DIR}/nginx.pid"] == [nginx.PID_FILE]
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert directives(text, f"{kind}_temp_path") == [f"{nginx.TEMP_DIR}/{kind}"]


def test_nginx_listens_on_ipv4_only():
    assert directives(render(), "listen") == ["0.0.0.0:8080 default_server", "0.0.0.0:9000"]
    assert directives(render(metrics_port=None), "listen") == ["0.0.0.0:8080 default_server"]


def test_the_upstream_is_the_socket_one_request_per_connection():
    text = render()
    assert directives(text, "server") == [f"unix:{SOCKET_PATH}"]
    assert directives(text, "proxy_http_version") == ["1.1"]
    assert 'Connection "close"' in directives(text, "proxy_set_header")
    # No pool of kept-alive connections, which one gthread worker would hoard.
    assert not re.search(r"^\s*keepalive\s", text, re.MULTILINE)


def test_slow_clients_are_buffered_and_bounded():
    text = render()
    assert directives(text, "proxy_request_buffering") == ["on"]
    assert directives(text, "proxy_buffering") == ["on"]
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert len(directives(text, name)) == 1
    assert directives(text, "reset_timedout_connection") == ["on"]


def test_client_keep_alive_outlasts_the_load_balancers():
    assert directives(render(keep_alive_timeout_seconds=75), "keepalive_timeout")[0] == "75s"


def test_forwarding_headers_are_set_by_nginx_not_passed_through():
    headers = dict(h.split(None, 1) for h in directives(render(), "proxy_set_header"))
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Proto"] == "$forwarded_proto"
    for cleared in ("X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Protocol", "Forwarded"):
        assert headers[cleared] == '""'


def test_x_forwarded_for_is_believed_only_from_trusted_proxies():
    text = render(trusted_proxy_cidrs=["10.0.0.0/16", "172.16.0.0/12"])
    assert directives(text, "set_real_ip_from") == ["10.0.0.0/16", "172.16.0.0/12"]
    assert directives(text, "real_ip_header") == ["X-Forwarded-For"]
    assert directives(text, "real_ip_recursive") == ["on"]
    untrusted = render(trusted_proxy_cidrs=[])
    assert directives(untrusted, "set_real_ip_from") == [] and directives(untrusted, "real_ip_header") == []


def test_hsts_only_when_the_site_is_https():
    assert "Strict-Transport-Security" in " ".join(directives(render(https=True), "add_header"))
    assert "Strict-Transport-Security" not in " ".join(directives(render(https=False), "add_header"))


def test_the_admin_allowlist_is_rendered_only_when_given():
    text = render(admin_allowed_cidrs=["203.0.113.0/24", "198.51.100.7/32"])
    assert "location ^~ /ops-7f3a/ {" in text
    assert directives(text, "allow") == ["203.0.113.0/24", "198.51.100.7/32"]
    assert directives(text, "deny") == ["all"]
    open_admin = render(admin_allowed_cidrs=[])
    assert "/ops-7f3a/" not in open_admin and directives(open_admin, "deny") == []


def test_metrics_are_hidden_on_the_public_port():
    text = render()
    public = text.split("# Prometheus only")[0]
    assert re.search(r"location = /metrics \{\s*return 404;", public)
    assert "location = /metrics {\n            proxy_pass http://gunicorn;" in text
    assert "Prometheus only" not in render(metrics_port=None)


def test_static_files_are_served_by_nginx_only_when_given_a_root():
    text = render(static_root="/var/www/static")
    assert directives(text, "alias") == ["/var/www/static/"]
    assert f'Cache-Control "{nginx.STATIC_CACHE_CONTROL}"' in directives(text, "add_header")
    assert directives(render(static_root=None), "alias") == []


@pytest.mark.parametrize("overrides, message", [
    ({"admin_path": "/admin/"}, "admin_path"),
    ({"admin_path": "admin"}, "admin_path"),
    ({"admin_path": "admin/; deny all"}, "admin_path"),
    ({"admin_allowed_cidrs": ["10.0.0.1/8"]}, "host bits"),
    ({"trusted_proxy_cidrs": ["everyone"]}, "does not appear to be"),
    ({"socket_path": "/run/g.sock; include /etc/passwd"}, "absolute path"),
    ({"static_root": "static"}, "absolute path"),
    ({"listen_address": "::"}, "IPv4"),
])
def test_values_that_would_break_the_conf_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        render(**overrides)


def test_stop_command_waits_then_quits_gracefully_and_waits_for_nginx_to_go():
    argv = nginx.stop_command(15)
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2]
    assert script.startswith("sleep 15; nginx -e stderr -s quit -c /etc/webstack/nginx/nginx.conf; ")
    assert f"while [ -f {nginx.PID_FILE} ]" in script


# --- nginx -t -----------------------------------------------------------------------------------

COMBINATIONS = list(itertools.product([9000, None], [[], ["203.0.113.0/24", "10.20.0.0/16"]], [True, False],
                                      [True, False]))


@pytest.mark.parametrize("metrics_port, admin_cidrs, static, https", COMBINATIONS)
def test_nginx_accepts_the_conf(nginx_bin, nginx_user, scratch, metrics_port, admin_cidrs, static, https):
    temp, static_root = scratch / "tmp", scratch / "static"
    temp.mkdir()
    static_root.mkdir()
    give_to(temp, nginx_user)
    conf = scratch / "nginx.conf"
    conf.write_text(render(metrics_port=metrics_port, admin_allowed_cidrs=admin_cidrs, https=https,
                           static_root=str(static_root) if static else None, temp_dir=str(temp),
                           socket_path=str(scratch / "gunicorn.sock"), trusted_proxy_cidrs=["10.0.0.0/16"],
                           worker_processes=2))
    result = subprocess.run([nginx_bin, "-e", "stderr", "-t", "-c", str(conf)], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_has_the_modules_the_conf_needs(nginx_bin):
    # realip (set_real_ip_from, $realip_remote_addr); geo, map, gzip, proxy and upstream keepalive
    # are built in unless a build leaves them out.
    built = subprocess.run([nginx_bin, "-V"], capture_output=True, text=True, timeout=10).stderr
    assert "--with-http_realip_module" in built
    for left_out in ("--without-http_geo_module", "--without-http_map_module", "--without-http_gzip_module",
                     "--without-http_upstream_keepalive_module"):
        assert left_out not in built


def test_the_default_paths_are_the_pods():
    text = render()
    assert f"include {nginx.MIME_TYPES};" in text and Path(nginx.MIME_TYPES).is_absolute()
    assert nginx.CONFIG_DIR == "/etc/webstack/nginx" and nginx.CONF_FILE == "nginx.conf"
