"""FastApiStack: a FastAPI service on Uvicorn or Granian, autoscaled in Kubernetes."""

from __future__ import annotations

from typing import Any

import pulumi

from components.database import PORT as DATABASE_PORT  # RDS and the in-cluster server alike
from components.network import NewVpcArgs
from components.postgres import InClusterPostgresArgs
from components.web_service import ConfigFiles
from stacks.fastapi.server import ServerPlan, plan_server
from stacks.fastapi.settings import FastApiSettings
from stacks.platform import (
    Platform,
    app_database,
    app_dns,
    app_namespace,
    base_exports,
    build_platform,
    observability,
    release_jobs,
    web_service,
)
from stacks.settings import ReleaseStep


class FastApiStack(pulumi.ComponentResource):
    """FastAPI on its ASGI server: restricted namespace, tuned server, autoscaled service, ingress,
    and optionally PostgreSQL whose Alembic migrations gate every rollout."""

    def __init__(self, name: str, settings: FastApiSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:FastApiStack", name, None, opts)
        fa = settings.fastapi
        db_args = fa.database
        platform = build_platform(name, settings, parent=self, needs_network=db_args.enabled)
        ns = app_namespace(platform, database_port=DATABASE_PORT if db_args.enabled else None,
                           serve_port=settings.app.port)
        self.server = server_plan(platform)
        outputs = base_exports(platform)

        secrets: dict[str, pulumi.Input[str]] = {}
        env: dict[str, str] = dict(self.server.env)
        release_env: dict[str, str] = {}
        service_account = None
        default_release = []
        sources: list = []
        database_ready: list = []
        if db_args.enabled:
            local = InClusterPostgresArgs(image=db_args.local_image, storage=db_args.local_storage,
                                          database_name=db_args.database_name)
            password = db_args.local_password.get_secret_value() if db_args.local_password else None
            db = app_database(platform, ns, db_args, local=local, local_password=password)
            secrets, env, release_env = dict(db.secrets), {**env, **db.env}, db.env
            service_account, sources, database_ready = db.service_account, db.sources, db.depends_on
            default_release = [("migrate", ReleaseStep(command=db_args.migrate_command, migration=True))]
            outputs["database_host"] = db.host
            if db.identifier is not None:
                outputs["db_instance_identifier"] = db.identifier
        jobs = release_jobs(platform, ns, default_release, secrets=secrets, env=release_env,
                            service_account=service_account, sources=sources,
                            pod_field_env=self.server.pod_field_env, depends_on=database_ready)
        if jobs:
            outputs["release_jobs"] = [job.job_name for job in jobs]

        web = web_service(platform, ns, command=self.server.command,
                          graceful_timeout=fa.server.graceful_timeout_seconds,
                          autoscaling=fa.autoscaling, secrets=secrets, env=env,
                          pod_field_env=self.server.pod_field_env,
                          config_files=[ConfigFiles(role=self.server.kind, mount_path=self.server.config_dir,
                                                     files=self.server.files)],
                          writable_paths=self.server.writable_paths, sources=sources,
                          depends_on=[*database_ready, *jobs])
        outputs["url"] = web.url
        outputs.update(app_dns(platform, web))
        outputs.update(observability(platform, web, autoscaling=fa.autoscaling, jobs=jobs,
                                     db_max_connections=settings.db_max_connections()))
        self.outputs = outputs
        self.register_outputs(outputs)

    def exports(self) -> dict[str, Any]:
        """Stack outputs, as `pulumi stack output` will show them."""
        return dict(self.outputs)


def server_plan(platform: Platform) -> ServerPlan:
    """The server plan for this stack: proxy headers trusted from the VPC the kit created."""
    s = platform.settings
    assert isinstance(s, FastApiSettings)
    server = s.fastapi.server
    trusted = server.forwarded_allow_ips
    if trusted is None:
        # ALB targets pods by IP from inside the VPC: its addresses are the VPC's.
        trusted = [s.network.cidr_block] if s.target == "aws" and isinstance(s.network, NewVpcArgs) \
            and platform.network is not None else []
    return plan_server(server, s.app.resources, port=s.app.port, service_name=platform.namespace,
                       environment=s.environment, trusted_proxies=trusted,
                       otlp_endpoint=s.observability.collector_endpoint(),
                       trace_sample_ratio=s.observability.trace_sample_ratio)
