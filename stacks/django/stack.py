"""DjangoStack: Gunicorn behind Nginx in one pod; every release migrates, then collects static
files, then rolls out.

The pod:

    client -> ALB / ingress-nginx -> nginx (app.port) -> unix socket -> gunicorn (app)
                                     nginx (METRICS_PORT, /metrics only) -> Prometheus

Gunicorn listens only on a socket in a memory-backed emptyDir the two containers share, so
nothing but Nginx reaches it. The app container's probes call Nginx's port, so they test the
path every request takes.

Media (files users upload, `django.media`): on aws a private S3 bucket (components/media_bucket.py)
that only the app's own Pod Identity may write, read back through presigned URLs the app signs
per request; on local a volume claim mounted in the app container, read back through URLs the app
signs and serves itself (a laptop cluster has no S3, and a presigned URL to an in-cluster store
would name a host the browser cannot reach). One limit, `django.nginx.client_max_body_size_mb`,
is Nginx's client_max_body_size and Django's (DJANGO_MAX_UPLOAD_MB).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.database import PORT as DATABASE_PORT
from components.k8s_pod import PodSource
from components.media_bucket import MediaBucket
from components.network import NewVpcArgs
from components.pod_identity import (PodIdentity, PodIdentityArgs, Statement, media_write_statements,
                                     static_upload_statements)
from components.postgres import InClusterPostgresArgs
from components.static_cdn import StaticCdn
from components.waf import WafArgs, WebAcl
from components.web_service import APP_CONTAINER, INIT_CONTAINER, ConfigFiles, ExtraContainer, SharedDir
from stacks.django import nginx
from stacks.django.server import COLLECTSTATIC, MIGRATE, SOCKET_DIR, SOCKET_PATH, plan_gunicorn
from stacks.django.server import CONFIG_DIR as GUNICORN_DIR
from stacks.django.settings import DjangoSettings, MediaSettings
from stacks.platform import (Platform, app_database, app_dns, app_namespace, base_exports, build_platform,
                             observability, release_job, release_jobs, web_service)
from stacks.settings import ReleaseStep

NGINX_CONTAINER = "nginx"
# Nginx's second listener, serving only /metrics: Prometheus scrapes it, the load balancer never sees it.
METRICS_PORT = 9000
# Seconds a Terminating pod keeps serving while kube-proxy and the load balancer stop sending to it.
PRESTOP_DELAY_SECONDS = 15
# Where a local cluster's ingress controller and other pods come from (kind, k3d, minikube use these).
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
# Kubelet probes and ALB health checks send `Host: <pod IP>:<port>`; Django answers 400 to a host
# missing from ALLOWED_HOSTS, so the pod must know its IP to allow it.
POD_FIELD_ENV = {"POD_IP": "status.podIP"}
# Target local: where the app container mounts the uploads volume (DJANGO_MEDIA_ROOT).
MEDIA_ROOT = "/var/www/media"
MEDIA_VOLUME = "media"


class DjangoStack(pulumi.ComponentResource):
    """Django: Nginx + Gunicorn pods, PostgreSQL (RDS on aws, in-cluster on local), static files
    (S3 + CloudFront on aws, Nginx on local), uploads (a private S3 bucket on aws, a volume on
    local), the admin behind an allowlist and a WAF; migrate and collectstatic Jobs gate every
    rollout."""

    def __init__(self, name: str, settings: DjangoSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:DjangoStack", name, None, opts)
        dj = settings.django
        aws_target = settings.target == "aws"
        platform = build_platform(name, settings, parent=self, needs_network=aws_target)
        metrics_port = METRICS_PORT if dj.server.metrics else None
        admin_path = settings.admin_path(pulumi.get_stack())
        ns = app_namespace(platform, database_port=DATABASE_PORT, serve_port=settings.app.port,
                           metrics_port=metrics_port)
        self.server = plan_gunicorn(dj.server, settings.app.resources, threads=settings.gunicorn_threads(),
                                    service_name=platform.namespace, environment=settings.environment,
                                    otlp_endpoint=settings.observability.collector_endpoint(),
                                    trace_sample_ratio=settings.observability.trace_sample_ratio)
        outputs = base_exports(platform)

        media = dj.media
        media_bucket = None
        if media is not None and aws_target:
            # Before the database: the app's Pod Identity, made with it, gets write access to this bucket.
            media_bucket = MediaBucket(f"{name}-media", media.bucket_args(), opts=platform.aws_opts)
            outputs["media_bucket_name"] = media_bucket.bucket_name
        db = self._database(platform, ns, app_statements=media_write_statements(media_bucket.bucket_arn)
                            if media_bucket is not None else ())
        outputs["database_host"] = db.host
        if db.identifier is not None:
            outputs["db_instance_identifier"] = db.identifier
        # Outputs of other resources reach the pods through the Secret (`wiring`); plain values as env.
        wiring: dict[str, pulumi.Input[str]] = dict(db.secrets)
        env: dict[str, str] = {**db.env, **django_env(settings, platform, admin_path)}
        if db.password_file:
            env["DATABASE_PASSWORD_FILE"] = db.password_file
        media_sources: list[PodSource] = []
        media_claims: list[pulumi.Resource] = []
        if media is not None:
            env["DJANGO_MEDIA_URL_EXPIRY_SECONDS"] = str(media.url_expiry_seconds)
            if media_bucket is not None:
                wiring["DJANGO_MEDIA_BUCKET"] = media_bucket.bucket_name
            else:
                env["DJANGO_MEDIA_ROOT"] = MEDIA_ROOT
                source, claim = self._media_volume(platform, ns, media)
                media_sources.append(source)
                media_claims.append(claim)
        jobs = release_jobs(platform, ns, [("migrate", ReleaseStep(command=MIGRATE, migration=True))],
                            secrets=wiring, env=env,
                            service_account=db.service_account, sources=db.sources, pod_field_env=POD_FIELD_ENV,
                            depends_on=db.depends_on)

        waf_acl_arn = None
        if aws_target:
            static = StaticCdn(f"{name}-static", dj.static, opts=platform.aws_opts)
            wiring |= {"STATIC_URL": static.url.apply(lambda u: f"{u}/"),
                       "AWS_STORAGE_BUCKET_NAME": static.bucket_name,
                       "AWS_S3_CUSTOM_DOMAIN": static.domain_name}
            env["AWS_S3_REGION_NAME"] = platform.region or "us-east-1"
            jobs.append(self._collectstatic(platform, ns, static, wiring, env, after=[*db.depends_on, *jobs]))
            outputs.update(static_url=static.url, static_bucket_name=static.bucket_name,
                           static_distribution_id=static.distribution_id)
            if settings.has_alb and dj.admin.waf is not None:
                waf_acl_arn = self._app_waf(platform, admin_path)
        else:
            env["STATIC_URL"] = nginx.STATIC_URL_PATH

        web = web_service(
            platform, ns, command=self.server.command, graceful_timeout=dj.server.graceful_timeout_seconds,
            autoscaling=dj.autoscaling, secrets=wiring, env={**env, **self.server.env},
            pod_field_env={**self.server.pod_field_env, **POD_FIELD_ENV},
            config_files=[ConfigFiles(role="gunicorn", mount_path=GUNICORN_DIR, files=self.server.files),
                          ConfigFiles(role="nginx", mount_path=nginx.CONFIG_DIR,
                                      files={nginx.CONF_FILE: nginx_conf(platform, admin_path, metrics_port)},
                                      containers=[NGINX_CONTAINER])],
            writable_paths=self.server.writable_paths, sources=[*db.sources, *media_sources],
            depends_on=[*db.depends_on, *jobs, *media_claims], waf_acl_arn=waf_acl_arn,
            **pod_layout(settings, metrics_port))
        outputs["url"] = web.url
        outputs["admin_url"] = web.url.apply(lambda u: f"{u.rstrip('/')}/{admin_path}")
        if dj.admin.allowed_cidrs:
            # What `python -m cli verify` checks is refused outside the allowlist (docs/verify.md).
            outputs["admin_path"] = f"/{admin_path}"
        if waf_acl_arn is not None:
            outputs["app_waf_acl_arn"] = waf_acl_arn
        outputs.update(app_dns(platform, web))
        outputs.update(observability(platform, web, autoscaling=dj.autoscaling, jobs=jobs,
                                     db_max_connections=settings.db_max_connections()))
        if jobs:
            outputs["release_jobs"] = [job.job_name for job in jobs]
        self.outputs = outputs
        self.register_outputs(outputs)

    def exports(self) -> dict[str, Any]:
        """Stack outputs, as `pulumi stack output` will show them."""
        return dict(self.outputs)

    @staticmethod
    def _database(platform: Platform, ns, *, app_statements: Sequence[Statement] = ()):
        s = platform.settings
        assert isinstance(s, DjangoSettings)
        db = s.django.database
        if s.target == "local":
            assert db.local_password is not None  # the settings require it on local
            local = InClusterPostgresArgs(image=db.local_image, storage=db.local_storage,
                                          database_name=db.database_name, max_connections=s.local_max_connections())
            return app_database(platform, ns, db, local=local, local_password=db.local_password.get_secret_value())
        return app_database(platform, ns, db, app_statements=app_statements)

    @staticmethod
    def _media_volume(platform: Platform, ns, media: MediaSettings) -> tuple[PodSource, pulumi.Resource]:
        """Target local: a volume claim for uploads, mounted where the app's image runs (the app
        container, and the init container, as every source of the app's is): Django writes it and
        serves what it signed; Nginx never mounts it.

        ReadWriteOnce, what every laptop cluster's provisioner offers (kind's and k3d's local-path,
        minikube's hostpath): one node mounts it, so all the replicas share it on a single-node
        cluster; on a cluster of several nodes a pod scheduled elsewhere stays Pending (use the aws
        target, or a ReadWriteMany class, there)."""
        claim_name = f"{platform.name}-{MEDIA_VOLUME}"
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{platform.name}-media-claim",
            # skipAwait: a claim of a WaitForFirstConsumer class (kind's, k3d's) stays Pending until a
            # pod uses it, and the pods come after it; the Deployment's rollout waits for the mount.
            metadata={"name": claim_name, "namespace": ns.name, "annotations": {"pulumi.com/skipAwait": "true"}},
            spec=media_claim_spec(media),
            opts=pulumi.ResourceOptions.merge(platform.k8s_opts, pulumi.ResourceOptions(
                protect=media.protect, retain_on_delete=media.protect)))
        source = PodSource(volumes=[{"name": MEDIA_VOLUME, "persistentVolumeClaim": {"claimName": claim_name}}],
                           mounts=[{"name": MEDIA_VOLUME, "mountPath": MEDIA_ROOT}])
        return source, claim

    @staticmethod
    def _collectstatic(platform: Platform, ns, static: StaticCdn, wiring: dict[str, pulumi.Input[str]],
                       env: dict[str, str], *, after: list[pulumi.Resource]):
        """`manage.py collectstatic` in the new image, writing hashed files to the bucket as its own
        ServiceAccount, whose Pod Identity may write that bucket and nothing else (no database
        password either)."""
        assert platform.cluster is not None and platform.cluster.cluster_name is not None
        account = f"{platform.name}-static"
        sa = k8s.core.v1.ServiceAccount(f"{platform.name}-static-service-account",
                                        metadata={"name": account, "namespace": ns.name},
                                        automount_service_account_token=False, opts=platform.k8s_opts)
        identity = PodIdentity(f"{platform.name}-static-identity",
                               PodIdentityArgs(namespace=platform.namespace, service_account=account),
                               cluster_name=platform.cluster.cluster_name,
                               statements=static_upload_statements(static.bucket_arn),
                               opts=platform.aws_opts)
        # No database password: collectstatic needs none, and this identity may not read the secret,
        # so it gets neither the CSI-mounted password (the database's `sources`) nor its file's path.
        return release_job(platform, ns, "collectstatic", ReleaseStep(command=COLLECTSTATIC), secrets=wiring,
                           env={k: v for k, v in env.items() if k != "DATABASE_PASSWORD_FILE"},
                           service_account=account, pod_field_env=POD_FIELD_ENV,
                           # A pod started before its Pod Identity association gets no AWS credentials.
                           depends_on=[*after, sa, identity])

    @staticmethod
    def _app_waf(platform: Platform, admin_path: str) -> pulumi.Output[str]:
        """A REGIONAL web ACL on the app's ALB: managed rules, a rate limit, and the admin allowlist."""
        s = platform.settings
        assert isinstance(s, DjangoSettings) and s.django.admin.waf is not None
        admin = s.django.admin
        rules = s.django.admin.waf
        args = WafArgs(**rules.model_dump(), admin_path=f"/{admin_path}",
                       admin_allowed_cidrs=admin.allowed_cidrs) if admin.allowed_cidrs else rules
        return WebAcl(f"{platform.name}-app-waf", args, scope="REGIONAL", opts=platform.aws_opts).arn


def nginx_conf(platform: Platform, admin_path: str, metrics_port: int | None) -> str:
    """The pod's nginx.conf (stacks/django/nginx.py) from the stack's settings."""
    s = platform.settings
    assert isinstance(s, DjangoSettings)
    dj = s.django
    return nginx.nginx_conf(
        port=s.app.port, socket_path=SOCKET_PATH,
        metrics_port=metrics_port, admin_path=admin_path, admin_allowed_cidrs=list(dj.admin.allowed_cidrs),
        trusted_proxy_cidrs=trusted_proxies(s, platform),
        client_max_body_size_mb=dj.nginx.client_max_body_size_mb,
        keep_alive_timeout_seconds=dj.nginx.keep_alive_timeout_seconds,
        upstream_timeout_seconds=dj.server.timeout_seconds + 5,
        shutdown_timeout_seconds=dj.server.graceful_timeout_seconds + nginx.GUNICORN_STOP_LAG_SECONDS,
        https=s.serves_https,
        static_root=nginx.STATIC_ROOT if s.target == "local" else None,
        worker_processes=nginx.worker_processes(dj.nginx.resources.cpu_limit))


def media_claim_spec(media: MediaSettings) -> dict[str, Any]:
    """Target local: the uploads volume's claim (ReadWriteOnce: see DjangoStack._media_volume)."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": media.local_storage}}}
    if media.local_storage_class:
        spec["storageClassName"] = media.local_storage_class
    return spec


def trusted_proxies(settings: DjangoSettings, platform: Platform) -> list[str]:
    """Whose X-Forwarded-For Nginx believes: the stack's setting, else the VPC the kit created (the
    ALB sends from it), else on local the private ranges the ingress controller's pods are in."""
    given = settings.django.nginx.trusted_proxy_cidrs
    if given is not None:
        return list(given)
    if settings.target == "local":
        return list(PRIVATE_RANGES)
    if isinstance(settings.network, NewVpcArgs) and platform.network is not None:
        return [settings.network.cidr_block]
    return []


def django_env(settings: DjangoSettings, platform: Platform, admin_path: str) -> dict[str, str]:
    """What the kit tells Django (README, "Deploy your own app"): hosts, origins, HTTPS, the admin path."""
    app, ns = settings.app, platform.namespace
    service = platform.app_service_account  # WebService names its Service after itself
    hosts = [h for h in [app.domain] if h] + [f"{service}.{ns}.svc.cluster.local", f"{service}.{ns}.svc",
                                              "$(POD_IP)"]
    if settings.target == "local" and not app.domain:
        # The Ingress answers any host; on a laptop that is http://localhost/ (kind, k3d, Docker Desktop).
        hosts += ["localhost", "127.0.0.1"]
    scheme = "https" if settings.serves_https else "http"
    env = {"DJANGO_ALLOWED_HOSTS": ",".join(hosts),
           "DJANGO_CSRF_TRUSTED_ORIGINS": f"{scheme}://{app.domain}" if app.domain else "",
           "DJANGO_HTTPS": "true" if settings.serves_https else "false",
           "DJANGO_ADMIN_PATH": admin_path,
           # Nginx's client_max_body_size too (nginx_conf): Django never refuses a body Nginx let through.
           "DJANGO_MAX_UPLOAD_MB": str(settings.django.nginx.client_max_body_size_mb)}
    if settings.target == "local":
        env["STATIC_ROOT"] = nginx.STATIC_ROOT
    return env


def pod_layout(settings: DjangoSettings, metrics_port: int | None) -> dict[str, Any]:
    """WebServiceArgs fields of the Django pod: Nginx in front of Gunicorn's socket; on local an
    init container collects the static files Nginx serves."""
    dj = settings.django
    local = settings.target == "local"
    shared = [SharedDir(name="gunicorn", mount_path=SOCKET_DIR, containers=[APP_CONTAINER, NGINX_CONTAINER],
                        memory=True)]
    if local:
        # The app reads the manifest (staticfiles.json) there to name each hashed file in its pages.
        shared.append(SharedDir(name="static", mount_path=nginx.STATIC_ROOT,
                                containers=[INIT_CONTAINER, APP_CONTAINER, NGINX_CONTAINER], size_limit="1Gi"))
    proxy = ExtraContainer(
        name=NGINX_CONTAINER, image=dj.nginx.image, port=settings.app.port,
        command=["nginx", "-e", "stderr", "-c", f"{nginx.CONFIG_DIR}/{nginx.CONF_FILE}"],
        health_path=nginx.HEALTH_PATH, resources=dj.nginx.resources, writable_paths=[nginx.TEMP_DIR],
        pre_stop_command=nginx.stop_command(PRESTOP_DELAY_SECONDS))
    return {
        "port": None, "probe_port": settings.app.port, "serve_from": NGINX_CONTAINER,
        "extra_containers": [proxy], "shared_dirs": shared,
        "metrics_port": metrics_port,
        # Gunicorn stops a little after Nginx stopped accepting, so Nginx's last requests still reach it.
        "prestop_delay_seconds": PRESTOP_DELAY_SECONDS + nginx.GUNICORN_STOP_LAG_SECONDS,
        "init_command": COLLECTSTATIC if local else None,
    }

