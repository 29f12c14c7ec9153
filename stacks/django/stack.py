"""DjangoStack: a Django project on Gunicorn; every release migrates before it rolls out."""

from __future__ import annotations

import pulumi

from components.database import Database
from components.release_job import ReleaseJob, ReleaseJobArgs
from components.static_cdn import StaticCdn
from stacks.base import WebStack
from stacks.settings import DjangoSettings, GunicornServer

MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
POSTGRES_PORT = 5432


def gunicorn_command(server: GunicornServer, port: int) -> list[str]:
    """The server command the pods run; the kit owns it so the grace period matches it."""
    return ["gunicorn", server.wsgi_app, "--bind", f"0.0.0.0:{port}",
            "--graceful-timeout", str(server.graceful_timeout_seconds),
            "--timeout", str(server.timeout_seconds),
            "--keep-alive", str(server.keep_alive_timeout_seconds),
            "--access-logfile", "-"]


class DjangoStack(WebStack):
    """Django on Gunicorn: migration Job gating the rollout; on aws, RDS and S3 + CloudFront."""

    def __init__(self, name: str, settings: DjangoSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:DjangoStack", name, settings, opts)
        dj = settings.django
        aws_target = settings.target == "aws"
        self._platform(needs_network=aws_target)
        ns = self._namespace(database_port=POSTGRES_PORT, serve_port=settings.app.port)

        # Connection facts are other resources' outputs; they reach the pods through the
        # Secret, the one channel of WebService and ReleaseJob that takes Outputs.
        wiring: dict[str, pulumi.Input[str]] = {}
        if aws_target:
            on_aws = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})
            assert self.network is not None and self.cluster is not None
            db = Database(f"{name}-db", dj.database, vpc_id=self.network.vpc_id,
                          subnet_ids=self.network.private_subnet_ids,
                          client_security_group_id=self.cluster.cluster_security_group_id, opts=on_aws)
            static = StaticCdn(f"{name}-static", dj.static, opts=on_aws)
            wiring = {
                "DATABASE_HOST": db.address,
                "DATABASE_PORT": db.port.apply(str),
                "DATABASE_NAME": db.database_name,
                # RDS keeps the master password in Secrets Manager and rotates it.
                "DATABASE_SECRET_ARN": db.secret_arn,
                "STATIC_URL": static.url.apply(lambda u: f"{u}/"),
                "AWS_STORAGE_BUCKET_NAME": static.bucket_name,
            }
            self._exports["static_url"] = static.url
            self._exports["database_host"] = db.address

        migrate = ReleaseJob(
            f"{name}-migrate",
            ReleaseJobArgs(image=settings.app.image, require_digest=not settings.is_dev, command=MIGRATE,
                           env=dict(settings.app.env), resources=settings.app.resources, secrets_as="env"),
            namespace=ns.name, secrets={**self.app_secrets(), **wiring} or None, opts=self.k8s_opts)
        self._web_service(ns, command=gunicorn_command(dj.server, settings.app.port),
                          graceful_timeout=dj.server.graceful_timeout_seconds, autoscaling=dj.autoscaling,
                          secrets=wiring, depends_on=[migrate])
        self._exports["migration_job"] = migrate.job_name
        self._finish()
