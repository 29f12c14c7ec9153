"""The product page, static file URLs, and what DJANGO_HTTPS changes for browsers and probes."""

from __future__ import annotations

import re

from .shop_app import gunicorn_argv


def test_the_product_page_lists_products_and_links_hashed_static_files(serve, app_env, postgres, port, static_root):
    postgres.psql(app_env["DATABASE_NAME"], "INSERT INTO catalog_product (name, price, created) VALUES "
                                            "('Teapot', 24.00, now()), ('<b>Kettle</b>', 31.50, now())")
    server = serve(gunicorn_argv(port), app_env, port=port)
    status, headers, body = server.get("/")
    page = body.decode()
    assert status == 200, page[-2000:]
    assert "Teapot" in page and "24.00" in page
    assert "&lt;b&gt;Kettle&lt;/b&gt;" in page  # names are escaped, never markup
    # The manifest's hashed name: a new deploy's CSS is a new URL, so no cache serves a stale one.
    css = re.search(r'href="/static/(catalog/site\.[0-9a-f]{12}\.css)"', page)
    assert css, page
    assert (static_root / css.group(1)).is_file()


def test_over_https_browsers_are_redirected_and_protected_but_probes_are_answered(serve, app_env, port):
    server = serve(gunicorn_argv(port), {**app_env, "DJANGO_HTTPS": "true"}, port=port)

    # Plain HTTP from a browser (the ALB forwards X-Forwarded-Proto: http): redirected.
    status, headers, _ = server.get("/", headers={"X-Forwarded-Proto": "http"})
    assert status == 301 and headers["location"] == f"https://127.0.0.1:{port}/"
    # The kubelet and the ALB health check call the pod directly over HTTP: answered, not redirected.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert server.get(path)[0] == 200, path

    status, headers, _ = server.get("/", headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"  # no preload
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"

    status, headers, _ = server.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert "secure" in headers["set-cookie"].lower()  # the CSRF cookie never travels over HTTP


def test_a_host_outside_allowed_hosts_is_refused(serve, app_env, port):
    server = serve(gunicorn_argv(port), app_env, port=port)
    assert server.get("/", headers={"Host": "evil.example"})[0] == 400
