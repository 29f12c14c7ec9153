"""FastApiStack: a FastAPI service on Uvicorn, autoscaled in Kubernetes."""

from __future__ import annotations

import pulumi

from components.network import NewVpcArgs
from components.postgres import InClusterPostgresArgs
from components.web_service import ConfigFiles
from stacks.base import POSTGRES_PORT, WebStack
from stacks.fastapi.server import CONFIG_DIR, ServerPlan, plan_server
from stacks.settings import FastApiSettings


class FastApiStack(WebStack):
    """FastAPI on Uvicorn: restricted namespace, tuned server, autoscaled service, ingress,
    and optionally PostgreSQL whose Alembic migrations gate every rollout."""

    def __init__(self, name: str, settings: FastApiSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:FastApiStack", name, settings, opts)
        fa = settings.fastapi
        db_args = fa.database
        self._platform(needs_network=db_args.enabled)
        ns = self._namespace(database_port=POSTGRES_PORT if db_args.enabled else None,
                             serve_port=settings.app.port)
        self.server = self.server_plan()

        secrets: dict[str, pulumi.Input[str]] = {}
        env: dict[str, str] = dict(self.server.env)
        depends_on = []
        if db_args.enabled:
            local = InClusterPostgresArgs(image=db_args.local_image, storage=db_args.local_storage,
                                          database_name=db_args.database_name)
            password = db_args.local_password.get_secret_value() if db_args.local_password else None
            db = self._database(ns, db_args, local=local, local_password=password)
            secrets, env = dict(db.secrets), {**env, **db.env}
            migrate = self._release_job(ns, "migrate", db_args.migrate_command, secrets=secrets, env=db.env,
                                        service_account=db.service_account)
            depends_on.append(migrate)
            self._exports["migration_job"] = migrate.job_name

        self._web_service(ns, command=self.server.command, graceful_timeout=fa.server.graceful_timeout_seconds,
                          autoscaling=fa.autoscaling, secrets=secrets, env=env,
                          pod_field_env=self.server.pod_field_env,
                          config_files=[ConfigFiles(role="uvicorn", mount_path=CONFIG_DIR, files=self.server.files)],
                          depends_on=depends_on)
        self._finish()

    def server_plan(self) -> ServerPlan:
        s = self.settings
        server = s.fastapi.server
        trusted = server.forwarded_allow_ips
        if trusted is None:
            # ALB targets pods by IP from inside the VPC: its addresses are the VPC's.
            trusted = [s.network.cidr_block] if s.target == "aws" and isinstance(s.network, NewVpcArgs) \
                and self.network is not None else []
        return plan_server(server, s.app.resources, port=s.app.port, service_name=self.namespace,
                           environment=s.environment, trusted_proxies=trusted,
                           otlp_endpoint=s.observability.otlp_endpoint,
                           trace_sample_ratio=s.observability.trace_sample_ratio)
