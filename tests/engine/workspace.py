"""One example stack run by the real Pulumi CLI, in a copy of the project.

The repo's own files are never touched: the project is copied into a temporary folder
(the repo's `.venv` linked in, as Pulumi.yaml names it), the stack lives in a local file
backend there, and config is set with `pulumi config set` on the copy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.engine.cluster import CONTEXT, ENGINE_BIN, Cluster
from tests.engine.monitoring import NAMESPACE as MONITORING_NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
# Not part of the program: left out of the copy.
NOT_PROGRAM = (".git", ".venv", ".venv-*", ".pytest_cache", ".ruff_cache", "__pycache__", "out", "tests", "bench",
               ".ci", ".github", "tools", "Pulumi.*.yaml")
PASSPHRASE = "webstack-engine-tests"  # a throwaway stack's secrets provider; not a secret


def cli_env(workdir: Path) -> dict[str, str]:
    """The environment `pulumi` runs in: its own home and a file backend in `workdir/state`
    (which the caller creates), never the user's login, plugins or cloud account."""
    venv_bin = ROOT / ".venv" / "bin"
    return {
        **os.environ,
        # The engine's own binaries first (the CLI finds its language host next to itself
        # and the Kubernetes provider on PATH), then the program's virtualenv.
        "PATH": os.pathsep.join([str(ENGINE_BIN), str(venv_bin), os.environ.get("PATH", "")]),
        "PULUMI_PYTHON_CMD": str(venv_bin / "python"),
        "PULUMI_HOME": str(workdir / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # Enables `--event-log` (the engine's own record of each step, used to check ordering).
        "PULUMI_DEBUG_COMMANDS": "true",
        # Not needed today (checked: preview and up run without it, the provider being found
        # on PATH), but nothing can be downloaded here: a plugin the program comes to need
        # (pulumi_aws is in the virtualenv too) then fails at once, naming the plugin.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }


def secure_paths(node, path: str = "") -> list[str]:
    """`--path` keys of every `secure:` value in a stack file's config section."""
    if isinstance(node, dict):
        if set(node) == {"secure"}:
            return [path]
        return [p for k, v in node.items() for p in secure_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in secure_paths(v, f"{path}[{i}]")]
    return []


def drop_path(config: dict, path: str) -> None:
    top, *rest = path.split(".")
    node = config
    for key in [top, *rest][:-1]:
        node = node[key]
    del node[[top, *rest][-1]]


def local_stacks() -> list[str]:
    """Every example stack meant for a laptop or CI cluster: Pulumi.<name>-local.yaml."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*-local.yaml"))


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def explain(self) -> str:
        return (f"`pulumi {' '.join(self.args)}` exited {self.returncode} after {self.seconds:.0f}s\n"
                f"--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-4000:]}")


class StackWorkspace:
    """`pulumi` in a copy of the project, on one stack, against one Cluster."""

    def __init__(self, stack: str, workdir: Path, cluster: Cluster) -> None:
        self.stack = stack
        self.cluster = cluster
        self.workdir = workdir
        self.project = workdir / "project"
        shutil.copytree(ROOT, self.project, ignore=shutil.ignore_patterns(*NOT_PROGRAM))
        # The example's `secure:` values are placeholders encrypted for no one: drop them from
        # the copy and set fresh ones under this stack's passphrase (init()).
        stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        self.secret_keys = secure_paths(stack_file.get("config") or {})
        for key in self.secret_keys:
            drop_path(stack_file["config"], key)
        (self.project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(stack_file, sort_keys=False))
        (self.project / ".venv").symlink_to(ROOT / ".venv")
        self.logs = workdir / "logs"
        self.logs.mkdir()
        self.env = {**cli_env(workdir), "KUBECONFIG": str(cluster.kubeconfig)}
        (workdir / "state").mkdir()
        self.runs = 0

    def pulumi(self, *args: str, timeout: float = 300, check: bool = True) -> Result:
        self.runs += 1
        cmd = [str(ENGINE_BIN / "pulumi"), *args, "--non-interactive", "--color", "never"]
        start = time.monotonic()
        # Its own process group: on a timeout the language host and the provider go too.
        proc = subprocess.Popen(cmd, cwd=self.project, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            result = Result(list(args), proc.returncode, out, err, time.monotonic() - start)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            result = Result(list(args), -1, out, err + f"\n[timed out after {timeout}s]", time.monotonic() - start)
        self._end_leftover_plugins()
        (self.logs / f"{self.runs:02d}-{args[0]}.log").write_text(result.explain())
        if check and not result.ok:
            raise AssertionError(result.explain() + "\n" + self.cluster.logs())
        return result

    def _end_leftover_plugins(self) -> None:
        """The CLI starts its plugins in process groups of their own. When it exits on an
        error before stopping them, the old language host lingers until its 5-minute health
        check notices; end those of this workspace (its PULUMI_HOME) now."""
        marker = f"PULUMI_HOME={self.env['PULUMI_HOME']}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if not os.readlink(proc / "exe").startswith(str(ENGINE_BIN)):
                    continue
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    os.kill(int(proc.name), signal.SIGTERM)
            except OSError:
                continue

    # -- the stack ---------------------------------------------------------------------
    def init(self) -> None:
        self.pulumi("stack", "init", self.stack, timeout=60)
        # mode: context is the local stacks' default; point it at the test cluster's context.
        self.pulumi("config", "set", "--path", "webstack:cluster.context", CONTEXT, timeout=60)
        # The cluster's Prometheus is the one tests/engine/monitoring.py runs, set up as
        # kube-prometheus-stack sets up its own: the stack only adds the app's ServiceMonitor,
        # rules and dashboard (mode: existing). The kit's default, installing that stack from its
        # charts, needs images and a chart repository nothing here can reach.
        self.pulumi("config", "set-all", "--path",
                    "--plaintext", "webstack:observability.mode=existing",
                    "--plaintext", f"webstack:observability.namespace={MONITORING_NAMESPACE}", timeout=60)
        for key in self.secret_keys:
            # Hex, not urlsafe: a value starting with '-' would be read as a flag ("unknown shorthand flag").
            self.pulumi("config", "set", "--secret", "--path", key, secrets.token_hex(18), timeout=60)

    def set_image(self, image: str) -> None:
        self.pulumi("config", "set", "--path", "webstack:app.image", image, timeout=60)

    def config(self) -> dict:
        # A section holding a secret (webstack:app with app.secrets) shows its keys only with --show-secrets.
        return json.loads(self.pulumi("config", "--json", "--show-secrets", timeout=60).stdout)

    def image(self) -> str:
        return self.config()["webstack:app"]["objectValue"]["image"]

    def outputs(self) -> dict:
        return json.loads(self.pulumi("stack", "output", "--json", timeout=60).stdout)

    def resources(self) -> list[dict]:
        state = json.loads(self.pulumi("stack", "export", timeout=60).stdout)
        return state["deployment"].get("resources") or []

    def created(self) -> list[dict]:
        """The resources in state besides the stack itself (the engine records its root
        `pulumi:pulumi:Stack` as soon as the program starts, even if it then fails)."""
        return [r for r in self.resources() if r["type"] != "pulumi:pulumi:Stack"]

    def live(self, type_: str) -> list[dict]:
        """Outputs of the stack's resources of one Pulumi type, e.g. kubernetes:batch/v1:Job."""
        return [r.get("outputs", {}) for r in self.resources() if r["type"] == type_ and not r.get("delete")]

    def up(self, *extra: str, event_log: Path | None = None, timeout: float = 420, check: bool = True) -> Result:
        args = ["up", "--yes", "--skip-preview", *extra]
        if event_log is not None:
            args += ["--event-log", str(event_log)]
        return self.pulumi(*args, timeout=timeout, check=check)


def read_event_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
