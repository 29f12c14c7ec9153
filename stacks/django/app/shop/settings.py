"""Settings of the shop, read only from environment variables (README.md has the table).

The kit passes these variables to every pod and release Job; on a laptop, your shell does.
A value that can't be right stops the process at startup with the variable's name and the
fix, rather than serving with a setting nobody asked for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str) -> bool:
    """'true' or 'false' (any case); unset or empty is false."""
    value = os.environ.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: expected 'true' or 'false'")
    return value == "true"


def env_list(name: str) -> list[str]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_int(name: str, default: int, low: int, high: int) -> int:
    """A whole number in low..high; unset or empty is `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


# --- core ---------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set: it signs sessions and CSRF tokens, so every process of one "
            "site needs the same secret value. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` (DJANGO_DEBUG=true uses a "
            "fixed development key instead)")
    # The prefix makes `check --deploy` flag this key if it ever reaches a server.
    SECRET_KEY = "django-insecure-development-only-not-a-secret"

# The site's domain and the pod's IP: kubelet probes and ALB health checks send
# `Host: <pod IP>:<port>`, and Django answers 400 to a host missing here.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "shop.apps.OTPAdminConfig",  # django.contrib.admin, whose default site asks for a TOTP token
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "catalog",
]

# Users who upload files sign in here (staff use the admin's own login, with its second factor),
# and land on their uploads.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "uploads"

MIDDLEWARE = [
    # First: counts every response, also those a middleware below makes (an HTTPS redirect, a
    # 400 for a host outside ALLOWED_HOSTS).
    "shop.metrics.PrometheusMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): true once this session passed a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Admin URL prefix. A path of your own keeps the admin out of scanners' default lists; the
# second factor below is what actually protects it.
ADMIN_PATH = os.environ.get("DJANGO_ADMIN_PATH", "admin/")
if not re.fullmatch(r"([A-Za-z0-9._~-]+/)+", ADMIN_PATH):
    raise ImproperlyConfigured(f"DJANGO_ADMIN_PATH={ADMIN_PATH!r}: expected a URL path without a leading "
                               "'/' that ends in '/', e.g. 'staff-7f3a/'")

# --- HTTPS and browser protections ------------------------------------------------------------

# Always on, HTTPS or not: no cost, and each closes a browser attack.
SESSION_COOKIE_HTTPONLY = True  # page scripts (an XSS) can't read the session cookie
SECURE_CONTENT_TYPE_NOSNIFF = True  # an uploaded .txt is never run as a script
X_FRAME_OPTIONS = "DENY"  # no page can be framed by another site (clickjacking)
SECURE_REFERRER_POLICY = "same-origin"  # URLs (and ids in them) don't leak to other sites

HTTPS = env_bool("DJANGO_HTTPS")
if HTTPS:
    # TLS ends at the load balancer, which talks HTTP to the pod and sets X-Forwarded-Proto.
    # The ALB always overwrites that header, so a client can't forge it from outside.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Cookies never travel over plain HTTP, where anyone on the path could read them.
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # A request that still arrives over HTTP is redirected; the probes are exempt: the kubelet
    # and the ALB health check call the pod over plain HTTP and would get a 301, not an answer;
    # Prometheus scrapes /metrics the same way.
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    # HSTS: browsers use HTTPS for a year after a first visit, so a network attacker can't
    # downgrade the next one. includeSubDomains covers hosts under this site's name only (not
    # its siblings) and stops an HTTP subdomain from planting cookies for this one.
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload is off unless you opt in: once the header says `preload`, anyone may submit the
    # domain to the browsers' built-in lists, and leaving them takes months of browser releases.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD")
    if not SECURE_HSTS_PRELOAD:
        # security.W021 asks for preload; not sending it is the choice explained above.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- database -------------------------------------------------------------------------------

DATABASES = {"default": {
    # Django's PostgreSQL backend (psycopg 3) plus PASSWORD_FILE: see shop/db/postgresql/base.py.
    "ENGINE": "shop.db.postgresql",
    "HOST": os.environ.get("DATABASE_HOST", ""),
    "PORT": os.environ.get("DATABASE_PORT", ""),
    "NAME": os.environ.get("DATABASE_NAME", ""),
    "USER": os.environ.get("DATABASE_USER", ""),
    # Empty: libpq reads PGPASSWORD itself.
    "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
    # Set: read at every new connection, and it wins over both passwords above.
    "PASSWORD_FILE": os.environ.get("DATABASE_PASSWORD_FILE", ""),
    # A connection serves a worker's requests for up to 60 s instead of a new TCP + TLS + SCRAM
    # login per request (milliseconds each, and CPU on a small RDS instance). The limit bounds
    # how long a process holds a connection to a database that failed over.
    "CONN_MAX_AGE": 60,
    # A reused connection is checked before a request's first query, so one that died (failover,
    # restart, idle timeout) is replaced instead of failing that request.
    "CONN_HEALTH_CHECKS": True,
    "OPTIONS": {
        # libpq's sslmode; the kit sets `require` on aws.
        "sslmode": os.environ.get("DATABASE_SSLMODE", "prefer"),
        # An unreachable host fails in seconds, not after the TCP retries (minutes).
        "connect_timeout": 5,
    },
}}

# --- static files -----------------------------------------------------------------------------

STATIC_BUCKET = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if STATIC_BUCKET:
    # `collectstatic` uploads to a private S3 bucket that CloudFront serves (origin access
    # control). Credentials come from boto3's default chain (EKS Pod Identity), never settings.
    STATIC_DOMAIN = os.environ.get("AWS_S3_CUSTOM_DOMAIN", "")
    if not STATIC_DOMAIN:
        # An absolute STATIC_URL (https://d123.cloudfront.net/) names the same domain.
        url = urlsplit(os.environ.get("STATIC_URL", ""))
        STATIC_DOMAIN = (url.netloc + url.path).rstrip("/") if url.scheme == "https" and url.netloc else ""
    if not STATIC_DOMAIN:
        raise ImproperlyConfigured(
            f"AWS_STORAGE_BUCKET_NAME={STATIC_BUCKET!r} needs AWS_S3_CUSTOM_DOMAIN (the CloudFront domain, "
            "e.g. d123.cloudfront.net) or an https:// STATIC_URL: the bucket is private, so pages must "
            "link to CloudFront")
    STATIC_URL = f"https://{STATIC_DOMAIN}/"
    STATICFILES_BACKEND = {
        # Hashed names (site.3f2a1c.css): a deploy never serves a stale file from a cache.
        "BACKEND": "storages.backends.s3.S3ManifestStaticStorage",
        "OPTIONS": {
            "bucket_name": STATIC_BUCKET,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "custom_domain": STATIC_DOMAIN,
            # A hashed name's content never changes: caches may keep it for a year, unasked.
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            # No object ACLs: the bucket owner enforces ownership and only CloudFront may read.
            "default_acl": None,
            # Public URLs through CloudFront, not presigned ones that expire and defeat caching.
            "querystring_auth": False,
        },
    }
else:
    # Files on disk: collectstatic writes STATIC_ROOT, which a web server in front serves.
    STATIC_ROOT = os.environ.get("STATIC_ROOT", "/var/www/static")
    STATIC_URL = os.environ.get("STATIC_URL", "/static/")
    STATICFILES_BACKEND = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}

# --- media: files users upload ----------------------------------------------------------------

# The largest request body, MiB: the kit sets Nginx's client_max_body_size to the same value, so
# Nginx answers 413 above it and Django never refuses a body Nginx let through.
MAX_UPLOAD_MB = env_int("DJANGO_MAX_UPLOAD_MB", 10, 1, 1024)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# Django's two settings with "MAX_MEMORY_SIZE" in their names do different things:
# DATA_UPLOAD_MAX_MEMORY_SIZE refuses (400) a body whose non-file part (form fields, JSON) is
# larger: the same limit as the whole body's, so a large JSON body Nginx accepted is accepted here.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES
# FILE_UPLOAD_MAX_MEMORY_SIZE limits nothing: an uploaded file larger than this is streamed to a
# temporary file (in /tmp, the pod's writable emptyDir) instead of held in the worker's memory.
# Django's default, 2.5 MiB, stated: each of a worker's threads may hold that much.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# How long a link to an upload works: a presigned S3 URL, or one this app signs (shop/media.py).
MEDIA_URL_EXPIRY_SECONDS = env_int("DJANGO_MEDIA_URL_EXPIRY_SECONDS", 300, 1, 3600)

MEDIA_BUCKET = os.environ.get("DJANGO_MEDIA_BUCKET", "")
if MEDIA_BUCKET:
    # A private bucket only this app's role may read or write; a link is a presigned GET that
    # works for MEDIA_URL_EXPIRY_SECONDS (the bucket refuses older signatures).
    MEDIA_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_BUCKET,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_EXPIRY_SECONDS,
            # SigV4 (the bucket's s3:signatureAge limit applies to it; SigV2 presigning is legacy).
            "signature_version": "s3v4",
            # No object ACLs: the bucket enforces owner ownership.
            "default_acl": None,
            # Names are random (catalog.models.upload_to), so a save never replaces another
            # file and needs no "does it exist?" request (which would need s3:ListBucket).
            "file_overwrite": True,
        },
    }
else:
    # Files on a volume (the kit's uploads volume on a local cluster); a link is signed by this
    # app and served by it (shop/media.py), so uploads are as private as on S3.
    MEDIA_ROOT = os.environ.get("DJANGO_MEDIA_ROOT", str(BASE_DIR / "media"))
    MEDIA_URL = "/media/"
    MEDIA_BACKEND = {"BACKEND": "shop.media.SignedFileSystemStorage",
                     "OPTIONS": {"location": MEDIA_ROOT, "expire_seconds": MEDIA_URL_EXPIRY_SECONDS}}

STORAGES = {
    "default": MEDIA_BACKEND,
    "staticfiles": STATICFILES_BACKEND,
}

# --- logs -------------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace_context": {"()": "shop.logs.TraceContextFilter"}},
    "formatters": {"json": {
        # One JSON object per line; fields given with extra= (and the trace ids) included.
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                            "formatter": "json", "filters": ["trace_context"]}},
    "root": {"handlers": ["stdout"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()},
    # Django's own default sends `django` records to stderr (in DEBUG) and to ADMINS by mail;
    # here they go to the root's JSON handler only.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
