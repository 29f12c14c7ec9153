"""A platform team's stack with N FastAPI services: how the offline render grows with a platform.

    .venv/bin/python bench/synthetic_stack.py N [--out DIR]     writes DIR/synthetic-N/ (default out/)

One Pulumi program that creates N services, each exactly as the `fastapi-local` example stack
creates its one: the kit's own `FastApiStack` component with that stack file's settings, in its
own namespace. So every service registers what a real FastAPI service of the kit does (restricted
Namespace, default-deny NetworkPolicies, ServiceAccount, Secret, Uvicorn ConfigMap, Deployment,
Service, HPA, PDB, Ingress, in-cluster PostgreSQL, the Alembic migration Job, ServiceMonitor,
PrometheusRule, dashboard) and each validates its settings as the loader does.

Why the `local` target: the same Kubernetes objects as on aws, with no EKS cluster or RDS
instance per service. On aws each FastApiStack would create its own VPC and EKS cluster, which
is not what a platform with 100 services looks like; a shared cluster is a different program.
Why `observability.mode existing`: a platform installs Prometheus and Grafana once per cluster
(its own stack), and each service adds only its ServiceMonitor, rules and dashboard.

The process starts like `python -m cli render` (collector threshold, SDK bytecode cache, no
interpreter teardown) and writes the render with `cli.render.write_render`, so its time is
comparable with the example stacks'.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cli import sdk_imports  # noqa: E402  (light: imports no SDK)

# The example stack each synthetic service copies: the one on the local target, with a database.
TEMPLATE_STACK = "fastapi-local"
# Where each service's ServiceMonitor, rules and traces go: the platform's monitoring stack.
PLATFORM_OBSERVABILITY = {"mode": "existing", "namespace": "monitoring",
                          "otlp_endpoint": "http://otel-collector.monitoring:4318"}


def stack_name(services: int) -> str:
    return f"synthetic-{services}"


def service_name(index: int) -> str:
    """svc-001 ...: each service's component name and namespace (a DNS label, sorted as numbered)."""
    return f"svc-{index:03d}"


def template_values() -> tuple[dict[str, Any], set[str], dict[str, Any]]:
    """The template stack's settings values (keys without `webstack:`), which of them are secret, and
    the whole stack config as the Pulumi CLI would hand it to the program."""
    from cli.offline import PROJECT
    from cli.render import load_stack_file

    stack_file = load_stack_file(TEMPLATE_STACK, ROOT)
    prefix = f"{PROJECT}:"
    values = {k[len(prefix):]: v for k, v in stack_file.config.items() if k.startswith(prefix)}
    secret = {k[len(prefix):] for k in stack_file.secret_keys if k.startswith(prefix)}
    return values, secret, dict(stack_file.config)


def program(services: int) -> Callable[[], None]:
    """The platform's Pulumi program: `services` FastAPI services, each with its own settings."""
    values, secret, _ = template_values()

    def run() -> None:
        import pulumi

        from stacks.config import load_settings
        from stacks.fastapi.stack import FastApiStack

        exports = {}
        for index in range(1, services + 1):
            name = service_name(index)
            settings = load_settings({**values, "namespace": name, "observability": PLATFORM_OBSERVABILITY},
                                     secret)
            exports[name] = FastApiStack(name, settings).exports()["url"]
        pulumi.export("urls", exports)

    return run


def render(services: int, out_dir: Path) -> tuple[Path, int]:
    """Runs the program under mocks and writes `out_dir/synthetic-<services>/` as `cli.render`
    writes a stack; returns the folder and the number of resources registered."""
    from cli.offline import run_program
    from cli.render import write_render

    stack = stack_name(services)
    _, _, config = template_values()
    run = run_program(stack, config, program(services))
    dest = out_dir / stack
    if dest.exists():
        shutil.rmtree(dest)
    write_render(stack, run, dest)
    return dest, len(run.monitor.all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("services", type=int, help="how many FastAPI services the stack has")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    args = parser.parse_args(argv)
    if args.services < 1:
        parser.error("services: at least 1")
    started = time.perf_counter()
    path, resources = render(args.services, args.out)
    # bench/render.py reads the count from this line.
    print(f"{stack_name(args.services)}: wrote {path}/ ({resources} resources) "
          f"in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    # As `python -m cli` starts a render (cli/sdk_imports.py says why), so the times compare.
    sdk_imports.run_as_render_process(main)
