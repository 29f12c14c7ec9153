"""DjangoStack: a Django project on Gunicorn; every release migrates before it rolls out."""

from __future__ import annotations

import pulumi

from components.static_cdn import StaticCdn
from stacks.base import POSTGRES_PORT, WebStack
from stacks.settings import DjangoSettings, GunicornServer

MIGRATE = ["python", "manage.py", "migrate", "--noinput"]


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
        env: dict[str, str] = {}
        release_account = None
        if aws_target:
            db = self._database(ns, dj.database)
            static = StaticCdn(f"{name}-static", dj.static,
                               opts=pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider}))
            wiring = {**db.secrets, "STATIC_URL": static.url.apply(lambda u: f"{u}/"),
                      "AWS_STORAGE_BUCKET_NAME": static.bucket_name}
            env, release_account = db.env, db.service_account
            self._exports["static_url"] = static.url

        migrate = self._release_job(ns, "migrate", MIGRATE, secrets=wiring, env=env, service_account=release_account)
        self._web_service(ns, command=gunicorn_command(dj.server, settings.app.port),
                          graceful_timeout=dj.server.graceful_timeout_seconds, autoscaling=dj.autoscaling,
                          secrets=wiring, env=env, depends_on=[migrate])
        self._exports["migration_job"] = migrate.job_name
        self._finish()
