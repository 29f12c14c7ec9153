"""DjangoStack: a Django project on Gunicorn; every release migrates before it rolls out."""

from __future__ import annotations

from typing import Any

import pulumi

from components.database import PORT as DATABASE_PORT
from components.static_cdn import StaticCdn
from stacks.django.server import MIGRATE, gunicorn_command
from stacks.django.settings import DjangoSettings
from stacks.platform import (app_database, app_dns, app_namespace, base_exports, build_platform, release_jobs,
                             web_service)
from stacks.settings import ReleaseStep


# Kubelet probes and ALB health checks send `Host: <pod IP>:<port>`; Django answers 400 to a host
# missing from ALLOWED_HOSTS, so the pod must know its IP to allow it (README, "Deploy your own app").
POD_FIELD_ENV = {"POD_IP": "status.podIP"}


class DjangoStack(pulumi.ComponentResource):
    """Django on Gunicorn: migration Job gating the rollout; on aws, RDS and S3 + CloudFront."""

    def __init__(self, name: str, settings: DjangoSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:DjangoStack", name, None, opts)
        dj = settings.django
        aws_target = settings.target == "aws"
        platform = build_platform(name, settings, parent=self, needs_network=aws_target)
        # A database port is opened only where the kit gives Django a database (aws).
        ns = app_namespace(platform, database_port=DATABASE_PORT if aws_target else None,
                           serve_port=settings.app.port)
        outputs = base_exports(platform)

        # Connection facts are other resources' outputs; they reach the pods through the
        # Secret, the one channel of WebService and ReleaseJob that takes Outputs.
        wiring: dict[str, pulumi.Input[str]] = {}
        env: dict[str, str] = {}
        release_account = None
        sources: list = []
        database_ready: list = []
        if aws_target:
            db = app_database(platform, ns, dj.database)
            static = StaticCdn(f"{name}-static", dj.static, opts=platform.aws_opts)
            wiring = {**db.secrets, "STATIC_URL": static.url.apply(lambda u: f"{u}/"),
                      "AWS_STORAGE_BUCKET_NAME": static.bucket_name}
            env, release_account = db.env, db.service_account
            sources, database_ready = db.sources, db.depends_on
            outputs["database_host"] = db.host
            outputs["db_instance_identifier"] = db.identifier
            outputs["static_url"] = static.url
            outputs["static_bucket_name"] = static.bucket_name
            outputs["static_distribution_id"] = static.distribution_id

        jobs = release_jobs(platform, ns, [("migrate", ReleaseStep(command=MIGRATE))], secrets=wiring, env=env,
                            service_account=release_account, sources=sources, pod_field_env=POD_FIELD_ENV,
                            depends_on=database_ready)
        web = web_service(platform, ns, command=gunicorn_command(dj.server, settings.app.port),
                          graceful_timeout=dj.server.graceful_timeout_seconds, autoscaling=dj.autoscaling,
                          secrets=wiring, env=env, sources=sources, pod_field_env=POD_FIELD_ENV,
                          depends_on=[*database_ready, *jobs])
        outputs["url"] = web.url
        outputs.update(app_dns(platform, web))
        if jobs:
            outputs["release_jobs"] = [job.job_name for job in jobs]
        self.outputs = outputs
        self.register_outputs(outputs)

    def exports(self) -> dict[str, Any]:
        """Stack outputs, as `pulumi stack output` will show them."""
        return dict(self.outputs)
