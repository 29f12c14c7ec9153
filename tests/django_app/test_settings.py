"""Settings from the environment: the production values pass Django's deployment checks, and
a missing or malformed value stops the process with the variable's name."""

from __future__ import annotations

import pytest

from .shop_app import SECRET_KEY, manage

PRODUCTION = {"DJANGO_HTTPS": "true", "DJANGO_SECRET_KEY": SECRET_KEY,
              "DJANGO_ALLOWED_HOSTS": "shop.example,10.0.12.34",
              "DJANGO_CSRF_TRUSTED_ORIGINS": "https://shop.example", "DJANGO_ADMIN_PATH": "staff-7f3a/"}


def test_check_deploy_finds_no_issue_in_production_settings(django_venv):
    result = manage(PRODUCTION, "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    # The one silenced check is HSTS preload, off on purpose (settings.py says why).
    assert "(1 silenced)" in result.stdout


def test_check_deploy_with_s3_static_files_finds_no_issue(django_venv):
    s3 = {"AWS_STORAGE_BUCKET_NAME": "shop-static", "AWS_S3_REGION_NAME": "eu-west-1",
          "AWS_S3_CUSTOM_DOMAIN": "d111111abcdef8.cloudfront.net"}
    result = manage({**PRODUCTION, **s3}, "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr


def test_opting_into_hsts_preload_needs_no_silenced_check(django_venv):
    result = manage({**PRODUCTION, "DJANGO_HSTS_PRELOAD": "true"}, "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_flags_plain_http_settings(django_venv):
    """Without DJANGO_HTTPS the cookies may travel in clear: check --deploy must say so."""
    result = manage({**PRODUCTION, "DJANGO_HTTPS": "false"}, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is not set"),
    ({"DJANGO_DEBUG": "yes"}, "DJANGO_DEBUG='yes': expected 'true' or 'false'"),
    ({"DJANGO_HTTPS": "1"}, "DJANGO_HTTPS='1': expected 'true' or 'false'"),
    ({"DJANGO_ADMIN_PATH": "/admin"}, "DJANGO_ADMIN_PATH='/admin': expected a URL path without a leading '/'"),
    ({"DJANGO_ADMIN_PATH": "admin"}, "that ends in '/'"),
    ({"AWS_STORAGE_BUCKET_NAME": "shop-static"}, "needs AWS_S3_CUSTOM_DOMAIN"),
], ids=["no-secret-key", "debug-yes", "https-1", "admin-leading-slash", "admin-no-trailing-slash",
        "bucket-without-domain"])
def test_a_bad_setting_stops_the_process_and_names_the_variable(django_venv, change, message):
    result = manage({**PRODUCTION, **change}, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr, result.stderr[-2000:]


def test_debug_runs_without_a_secret_key_but_check_deploy_rejects_it(django_venv):
    result = manage({"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": ""}, "check", "--deploy")
    assert "security.W009" in result.stderr and "security.W018" in result.stderr  # the dev key, DEBUG on
