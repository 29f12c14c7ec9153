"""The admin asks staff for a TOTP token (django-otp) as well as the password, and lives at
DJANGO_ADMIN_PATH only."""

from __future__ import annotations

import base64
import re
import shlex
import urllib.parse

from harness import json_log_lines

from .shop_app import APP_DIR, Browser, gunicorn_argv, manage, ok, totp

ADMIN = "staff-7f3a/"
PASSWORD = "correct horse battery staple 42"


def readme_device_command() -> str:
    """The README's command that gives a staff user a TOTP device (YOU: the username)."""
    lines = [line for line in (APP_DIR / "README.md").read_text().splitlines()
             if line.startswith("python manage.py shell -c ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])[4]


def add_staff_with_totp(env, username: str) -> str:
    """A superuser and a TOTP device, made as the README says; returns the key (hex) that an
    authenticator app reads from the printed otpauth:// URL."""
    ok(manage({**env, "DJANGO_SUPERUSER_USERNAME": username, "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
               "DJANGO_SUPERUSER_EMAIL": f"{username}@shop.example"}, "createsuperuser", "--noinput"))
    printed = ok(manage(env, "shell", "-c", readme_device_command().replace("'YOU'", repr(username))))
    url = re.search(r"otpauth://totp/\S+", printed)
    assert url, printed
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.group(0)).query)
    assert (query["algorithm"], query["digits"], query["period"]) == (["SHA1"], ["6"], ["30"])
    secret = query["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()


def log_in(server_port: int, username: str, token: str | None) -> tuple[Browser, int, str]:
    """What a person does: username and password; the form then lists their devices; pick the
    phone, type the code it shows (`token`; None: leave the field empty). Returns the browser,
    the status of the last POST and its Location (or the page)."""
    browser = Browser(server_port)
    login = f"/{ADMIN}login/"
    fields = {"username": username, "password": PASSWORD, "next": f"/{ADMIN}"}
    status, _, page = browser.post_form(login, fields)
    assert status == 200  # the password alone never lets anyone in
    devices = re.findall(r'<option value="([^"]+)"[^>]*>phone</option>', page)
    assert len(devices) == 1, page
    fields |= {"otp_device": devices[0], "otp_token": token or ""}
    status, headers, page = browser.post_form(login, fields)
    return browser, status, headers.get("location", page)


def admin_index(browser: Browser) -> int:
    return browser.get(f"/{ADMIN}")[0]


def test_the_right_password_without_the_right_token_is_refused(serve, app_env, port):
    key = add_staff_with_totp(app_env, "alice")
    server = serve(gunicorn_argv(port), {**app_env, "DJANGO_ADMIN_PATH": ADMIN}, port=port)

    browser, status, page = log_in(port, "alice", None)
    assert status == 200 and "Please enter your OTP token" in page  # the form again, with an error
    assert admin_index(browser) == 302  # still sent to the login page

    wrong = f"{(int(totp(key)) + 1) % 1_000_000:06d}"
    browser, status, page = log_in(port, "alice", wrong)
    assert status == 200 and "Invalid token" in page
    assert admin_index(browser) == 302
    # The password was right: the log line to alert on (someone else may hold it).
    refused = [line for line in json_log_lines(server.logs())
               if line.get("message") == "login refused: wrong second-factor token"]
    assert [line["username"] for line in refused] == ["alice"]


def test_the_right_password_and_a_current_token_open_the_admin(serve, app_env, port):
    key = add_staff_with_totp(app_env, "bob")
    serve(gunicorn_argv(port), {**app_env, "DJANGO_ADMIN_PATH": ADMIN}, port=port)

    token = totp(key)
    browser, status, location = log_in(port, "bob", token)
    assert (status, location) == (302, f"/{ADMIN}"), location[location.find("errornote"):][:1500]
    status, _, page = browser.get(f"/{ADMIN}catalog/product/")
    assert status == 200 and "Select product to change" in page

    # A token is good once: replaying it (say, after shoulder-surfing) is refused.
    _, status, page = log_in(port, "bob", token)
    assert status == 200 and "Invalid token" in page


def test_the_admin_is_only_at_its_configured_path(serve, app_env, port):
    server = serve(gunicorn_argv(port), {**app_env, "DJANGO_ADMIN_PATH": ADMIN}, port=port)
    assert server.get(f"/{ADMIN}login/")[0] == 200
    assert server.get("/admin/")[0] == 404
    assert server.get("/admin/login/")[0] == 404
