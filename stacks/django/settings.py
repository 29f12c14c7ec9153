"""The `webstack:django` section: Gunicorn behind Nginx in one pod, the admin, autoscaling, the
database, the static files and the media (files users upload)."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from components.media_bucket import MediaBucketArgs
from components.static_cdn import StaticCdnArgs
from components.types import ImageRef, Ipv4Cidr, Quantity, allowlist_cidr
from components.waf import WafRules
from components.web_service import MAX_SURGE, Autoscaling, Resources
from stacks.django.server import connections_needed, little_threads, max_connections, rollout_pods, worker_count
from stacks.errors import PROJECT, at
from stacks.settings import (PROXY_IDLE_TIMEOUT_SECONDS, AppDatabaseSettings, AutoOrWhole, Section, StackSettings,
                             database_in_cluster_vpc, database_target_problem, database_target_unused)

# nginxinc's build of Nginx that runs as any non-root uid (listens above 1024, writes only where
# its config says); Alpine-based, by digest so prod runs exactly what was reviewed.
NGINX_IMAGE = ("docker.io/nginxinc/nginx-unprivileged:1.29.3-alpine"
               "@sha256:5aea7cc516b419e3526f47dd1531be31a56a046cfe44754d94f9383e13e2ee99")
# Connections the in-cluster PostgreSQL keeps beyond what the pods may open (psql, the
# release Job's retries, superuser reserve).
LOCAL_DATABASE_SPARE_CONNECTIONS = 20
# The pods a rolling update adds at most, percent (WebService's maxSurge).
SURGE_PERCENT = int(MAX_SURGE.rstrip("%"))
ADMIN_PATH_PATTERN = r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*/$"
DEFAULT_ADMIN_PATH = "admin/"


class GunicornServer(Section):
    """How Gunicorn runs the WSGI app, behind Nginx on a unix socket. `auto` values are computed
    from the pod's resources and the request profile below (stacks/django/server.py says why)."""

    wsgi_app: str = Field("config.wsgi:application", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
                          description="WSGI application as module:attribute.", examples=["shop.wsgi:application"])
    workers: AutoOrWhole = Field(
        "auto", description="Worker processes per pod. auto: one per whole core of app.resources.cpu_limit (at "
                            "least 1), as many as app.resources.memory_limit holds at worker_memory each.")
    worker_memory: Quantity = Field("128Mi", description="Memory one worker takes (RSS), bytes; sizes `workers`.")
    threads: AutoOrWhole = Field(
        "auto", description="Threads per worker (gthread workers above 1). auto: enough to keep a core busy while "
                            "requests wait on I/O (Little's law: (request_cpu_ms + request_io_ms) / request_cpu_ms, "
                            "at most 32), lowered to what the database's connections allow.")
    request_cpu_ms: int = Field(2, ge=1, le=10_000,
                                description="CPU time of a typical request, milliseconds (sizes auto threads).")
    request_io_ms: int = Field(50, ge=0, le=60_000,
                               description="Time a typical request waits on the database or other services, "
                                           "milliseconds (sizes auto threads).")
    timeout_seconds: int = Field(30, ge=1, le=600,
                                 description="A worker silent this long is killed and restarted (Gunicorn timeout).")
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds in-flight requests get after SIGTERM (graceful_timeout); the pod's "
                                      "grace period is derived from it.")
    max_requests: int = Field(50_000, ge=0, le=10_000_000,
                              description="A worker is replaced after this many requests (bounds slow leaks); 0: never.")
    max_requests_jitter: int = Field(5_000, ge=0, le=1_000_000,
                                     description="Random extra requests per worker, so workers are not replaced together.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Gunicorn's log level (its error log, JSON lines on stdout).")
    metrics: bool = Field(
        True, description="Prometheus metrics across workers (prometheus_client's multiprocess mode): the kit sets "
                          "PROMETHEUS_MULTIPROC_DIR to an emptyDir and cleans up after each worker.")

    @field_validator("workers", "threads")
    @classmethod
    def _bounds(cls, value: int | str, info) -> int | str:
        bounds = {"workers": (1, 64), "threads": (1, 256)}[info.field_name]
        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"{info.field_name}: {value} is out of range ({bounds[0]}..{bounds[1]}, or auto)")
        return value


class NginxProxy(Section):
    """Nginx in the same pod, in front of Gunicorn: buffers slow clients, serves the health check,
    guards the admin path, logs each request as JSON."""

    image: ImageRef = Field(NGINX_IMAGE, description="Nginx image that runs as non-root (by digest outside dev).")
    resources: Resources = Field(Resources(cpu_request="50m", cpu_limit="1", memory_request="32Mi",
                                           memory_limit="128Mi"), description="CPU and memory of the Nginx container.")
    # Nginx buffers each body to its emptyDir before Gunicorn sees it (a slow upload never holds a
    # thread), so the cap keeps a few concurrent uploads inside that 256Mi volume; larger files belong
    # in direct-to-S3 uploads.
    client_max_body_size_mb: int = Field(
        10, ge=1, le=100, description="Largest request body accepted, MiB: Nginx answers 413 above it, and Django "
                                      "gets the same limit (DJANGO_MAX_UPLOAD_MB), so the two never disagree.")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle client keep-alive seconds; above the load balancer's 60 s idle timeout "
                                       "so the balancer, not Nginx, closes idle connections (no 502s).")
    trusted_proxy_cidrs: list[Ipv4Cidr] | None = Field(
        None, description="Load balancer ranges whose X-Forwarded-For and X-Forwarded-Proto are believed. Default: "
                          "the VPC's CIDR when the kit creates it (aws), the private ranges on local; with an existing "
                          "VPC, set its CIDR.", examples=[["10.0.0.0/16"]])


class AdminSettings(Section):
    """Django's admin site: its path, who may reach it, and the WAF in front of the app."""

    path: str | None = Field(
        None, pattern=ADMIN_PATH_PATTERN,
        description="URL prefix of the admin, without the leading '/', e.g. 'ops-7f3a/' (the app reads "
                    "DJANGO_ADMIN_PATH; the `admin_url` output shows it). Default: 'admin/' in dev; elsewhere "
                    "'admin-<8 hex of the stack name's hash>/', off the path every scanner tries. Setting 'admin/' "
                    "outside dev needs allowed_cidrs.")
    # WAF IP sets reject IPv4 prefixes shorter than /8.
    allowed_cidrs: list[allowlist_cidr(8)] = Field(  # type: ignore[valid-type]
        default_factory=list, description="IPv4 CIDRs allowed on the admin path (office, VPN), enforced by Nginx "
                                          "and by the WAF. Empty: no address restriction (MFA still applies).")
    waf: WafRules | None = Field(
        default_factory=WafRules, description="REGIONAL WAF web ACL on the app's ALB (aws with app.domain): managed "
                                              "rule groups, a per-IP rate limit, and the admin allowlist. null: none.")


class MediaSettings(Section):
    """Files users upload (Django's default storage): a private S3 bucket the app writes through its own
    Pod Identity (aws), a volume (local); read back through short-lived signed URLs the app hands out."""

    # Five minutes: enough to open a link the app just rendered, short enough that a link copied
    # out of a page (a log, a proxy, a shared screen) is dead before it spreads.
    url_expiry_seconds: int = Field(
        300, ge=30, le=600, description="How long a signed URL to an upload works, seconds. At most 600: a "
                                        "presigned URL dies with the temporary credentials that signed it, which "
                                        "boto3 renews when less than 10 minutes are left.")
    noncurrent_version_days: int = Field(
        30, ge=1, le=3650, description="aws: days an overwritten or deleted upload stays recoverable.")
    protect: bool = Field(
        True, description="Pulumi refuses to delete the bucket (aws) or the volume claim (local), and a deletion that "
                          "goes ahead anyway (after `pulumi state unprotect`) only drops it from the stack "
                          "(retain_on_delete): uploads exist nowhere else.")
    local_storage: Quantity = Field("5Gi", description="target local: size of the uploads volume, bytes.")
    local_storage_class: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="target local: StorageClass of the uploads volume (ReadWriteOnce); default: the cluster's default.")

    def bucket_args(self) -> MediaBucketArgs:
        """The bucket's settings; its signatures live no longer than the URLs the app signs."""
        return MediaBucketArgs(noncurrent_version_days=self.noncurrent_version_days,
                               max_url_seconds=self.url_expiry_seconds, protect=self.protect)


MEDIA_AWS_ONLY = ("noncurrent_version_days",)
MEDIA_LOCAL_ONLY = ("local_storage", "local_storage_class")


class DjangoSection(Section):
    """Django on Gunicorn behind Nginx; every release migrates, then collects static files, then rolls out."""

    server: GunicornServer = Field(default_factory=GunicornServer, description="WSGI server settings.")
    nginx: NginxProxy = Field(default_factory=NginxProxy, description="The Nginx container in front of Gunicorn.")
    admin: AdminSettings = Field(default_factory=AdminSettings, description="The admin site's path and guards.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling.")
    database: AppDatabaseSettings = Field(default_factory=AppDatabaseSettings,
                                          description="PostgreSQL: RDS on aws, an in-cluster server on local.")
    static: StaticCdnArgs = Field(default_factory=StaticCdnArgs,
                                  description="Static files: private S3 bucket behind CloudFront (aws target).")
    media: MediaSettings | None = Field(
        default_factory=MediaSettings, description="Files users upload: a private S3 bucket (aws) or a volume (local), "
                                                   "read through signed URLs. null: none (the app gets no storage "
                                                   "for uploads).")


# Variables the kit gives the Django container (and its release Jobs), besides the database's.
DJANGO_ENV = ("DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS", "DJANGO_HTTPS", "DJANGO_ADMIN_PATH",
              "DJANGO_MAX_UPLOAD_MB", "STATIC_URL", "POD_IP")
DJANGO_ENV_AWS = ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_REGION_NAME", "AWS_S3_CUSTOM_DOMAIN", "DATABASE_PASSWORD_FILE")
DJANGO_ENV_LOCAL = ("STATIC_ROOT",)
# With django.media (the default): where uploads go and how long their URLs work.
MEDIA_ENV = ("DJANGO_MEDIA_URL_EXPIRY_SECONDS",)
MEDIA_ENV_AWS = ("DJANGO_MEDIA_BUCKET",)
MEDIA_ENV_LOCAL = ("DJANGO_MEDIA_ROOT",)


class DjangoSettings(StackSettings):
    framework: Literal["django"]
    django: DjangoSection = Field(default_factory=DjangoSection, description="Django-only settings.")

    def has_database(self) -> bool:
        return True

    def provided_env_names(self) -> set[str]:
        own = DJANGO_ENV + (DJANGO_ENV_AWS if self.target == "aws" else DJANGO_ENV_LOCAL)
        if self.django.media is not None:
            own += MEDIA_ENV + (MEDIA_ENV_AWS if self.target == "aws" else MEDIA_ENV_LOCAL)
        return super().provided_env_names() | set(own)

    @property
    def has_alb(self) -> bool:
        """An ALB in front: aws with app.domain."""
        return self.target == "aws" and self.app.domain is not None

    @property
    def serves_https(self) -> bool:
        """HTTPS at the load balancer: exactly when there is an ALB (the settings require its certificate)."""
        return self.has_alb

    def unused_keys(self) -> dict[str, str]:
        unused = super().unused_keys()
        unused.update(database_target_unused("django.database", self.target))
        if self.target == "local":
            unused["django.static"] = ("target local has no bucket or CDN: Nginx in the pod serves the static files "
                                       "an init container collects: remove it")
        for name in MEDIA_LOCAL_ONLY if self.target == "aws" else MEDIA_AWS_ONLY:
            unused[f"django.media.{name}"] = (
                "target local only; on aws uploads go to an S3 bucket: remove it" if self.target == "aws" else
                "an S3 bucket setting; target local keeps uploads on a volume: remove it")
        if not self.has_alb:
            unused["django.admin.waf"] = ("a WAF attaches to the app's ALB, which exists on aws with app.domain only: "
                                          "remove it")
        return unused

    # -- derived values --------------------------------------------------------------
    def admin_path(self, stack: str) -> str:
        """The admin's URL prefix: the one set, or a default per environment (AdminSettings.path)."""
        if self.django.admin.path is not None:
            return self.django.admin.path
        if self.is_dev:
            return DEFAULT_ADMIN_PATH
        # Not a secret (the stack name is not one): it keeps the admin off scanners' first guess.
        # The allowlist, the WAF's rate limit and MFA are what guard it.
        return f"admin-{hashlib.sha256(f'{PROJECT}/{stack}'.encode()).hexdigest()[:8]}/"

    def gunicorn_workers(self) -> int:
        return worker_count(self.django.server, self.app.resources)

    def database_capacity(self) -> int | None:
        """Connections the database holds: RDS by its instance class; the in-cluster server is
        sized to the app (local_max_connections)."""
        if self.target == "local":
            return None
        return max_connections(self.django.database.instance_class)

    def gunicorn_threads(self) -> int:
        """Threads per worker: the explicit value, or Little's law lowered to the database's budget."""
        server = self.django.server
        threads = little_threads(server)
        capacity = self.database_capacity()
        if server.threads != "auto" or capacity is None:
            return threads
        while threads > 1 and self._connections(threads) > capacity:
            threads -= 1
        return threads

    def _connections(self, threads: int) -> int:
        return connections_needed(self.gunicorn_workers(), threads, self.django.autoscaling.max_replicas,
                                  surge_percent=SURGE_PERCENT)

    def db_max_connections(self) -> int:
        """The connections the database accepts from the app: what its alert compares with."""
        return self.local_max_connections() if self.target == "local" else (
            self.database_capacity() or self.local_max_connections())

    def local_max_connections(self) -> int:
        """The in-cluster server's max_connections: all the pods may open, and some spare."""
        return self._connections(self.gunicorn_threads()) + LOCAL_DATABASE_SPARE_CONNECTIONS

    @model_validator(mode="after")
    def _consistent(self) -> "DjangoSettings":
        dj = self.django
        if problem := database_target_problem("django.database", dj.database, self.target, required=True):
            raise problem
        if self.target == "aws" and self.cluster.mode != "create":
            database_in_cluster_vpc(self)
        if dj.nginx.keep_alive_timeout_seconds <= PROXY_IDLE_TIMEOUT_SECONDS:
            raise at("django.nginx.keep_alive_timeout_seconds",
                     f"{dj.nginx.keep_alive_timeout_seconds} is not above the load balancer's idle timeout "
                     f"({PROXY_IDLE_TIMEOUT_SECONDS} s): Nginx would close connections the balancer still sends "
                     "on (502s); use 75 or more")
        if not self.is_dev and dj.admin.path == DEFAULT_ADMIN_PATH and not dj.admin.allowed_cidrs:
            raise at("django.admin.path", f"'{DEFAULT_ADMIN_PATH}' in {self.environment} with no "
                     "django.admin.allowed_cidrs: the first path every scanner tries, open to the internet; set "
                     "allowed_cidrs (office, VPN), choose another path, or remove the key (the default outside "
                     "dev is a path of its own)")
        if (self.has_alb and self.cluster.mode != "create" and dj.nginx.trusted_proxy_cidrs is None
                and dj.admin.allowed_cidrs):
            raise at("django.nginx.trusted_proxy_cidrs", "required with django.admin.allowed_cidrs on an existing "
                     "VPC: Nginx checks the client address the ALB forwards only when the request comes from "
                     "the ALB's range; set the VPC's CIDR, e.g. [10.0.0.0/16]")
        self._connection_budget()
        return self

    def _connection_budget(self) -> None:
        capacity = self.database_capacity()
        if capacity is None:
            return
        workers, threads = self.gunicorn_workers(), self.gunicorn_threads()
        needed = self._connections(threads)
        if needed <= capacity:
            return
        replicas = self.django.autoscaling.max_replicas
        surge = rollout_pods(replicas, SURGE_PERCENT) - replicas
        key = "django.server.threads" if self.django.server.threads != "auto" else "django.autoscaling.max_replicas"
        raise at(key, f"{workers} workers x {threads} threads x {replicas + surge} pods ({replicas} max replicas "
                 f"+ {surge} during a rollout) + 1 release Job = {needed} database connections, above the {capacity} "
                 f"that {self.django.database.instance_class} holds; lower django.server.threads, "
                 "django.server.workers or django.autoscaling.max_replicas, or choose a larger "
                 "django.database.instance_class")


# What dev and staging relax in this section.
PROFILE: dict[str, dict[str, Any]] = {
    "dev": {
        "django.database.protect": False,
        "django.database.deletion_protection": False,
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.micro",
        "django.database.backup_retention_days": 1,
        "django.static.protect": False,
        "django.media.protect": False,
        "django.autoscaling.min_replicas": 1,
        "django.autoscaling.max_replicas": 3,
    },
    "staging": {
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.medium",
        "django.database.backup_retention_days": 7,
        "django.autoscaling.max_replicas": 5,
    },
}
