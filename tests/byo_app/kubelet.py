"""What the kubelet would start for one rendered container, made runnable on this machine.

The render (`config/run/<Kind>-<name>.<container>.json`, read with harness.RenderedRun) gives a
container's command, args, env in the container's order, mounts and working dir. `Container`
checks that it says what the manifest says, then `local()` turns it into argv, env and cwd with
a fixed set of substitutions, each one recorded (`Local.substitutions`):

- the image: its files (`Image.root`, /app) -> the app's folder here, for the working dir, the
  arguments and the env; its WORKDIR when the container sets none; its ENV under the container's
  env (the container's wins, as with a container runtime); its Python -> `Image.bin` (.venv-byo
  unless the image says otherwise), first on PATH;
- each ConfigMap mount -> the rendered config/<configmap>/ dir; each emptyDir -> a fresh dir;
  a mount the caller places itself (`mounts`: a volume two containers share, a ConfigMap whose
  files it rewrote, the CSI driver's secret files) -> the caller's dir;
- env from a Secret -> the value the program put in that Secret (the mock engine sees it; the
  render masks it), or for a Secret the program does not create (`external_secrets`: the one the
  Secrets Store CSI driver syncs from Secrets Manager) the caller's value; env from the pod's own
  fields -> harness.POD_FIELD_STAND_INS (status.podIP -> PROBE_POD_IP);
- the database address the env holds (`Database`: host and port, in a host value, in
  DATABASE_PORT and in a URL's `@host:port/`) -> the test PostgreSQL on 127.0.0.1;
- the bind address (uvicorn `--host/--port`, gunicorn `--bind`) -> 127.0.0.1 and a free port.

Values are substituted where they come from (the Secret's content, a plain value); `$(NAME)`
references are then expanded by the kit's own components.k8s_pod.expand_env, in the rendered
order, as the kubelet expands them. harness.run_command and harness.Server start the process with
this env over harness.base_env (HOME, LANG, and PYTHONDONTWRITEBYTECODE: nothing is written into
the app's folder, as nothing can be into an image's read-only root filesystem).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from harness import HOST, POD_FIELD_STAND_INS, RenderedRun

from cli.mocks import RecordingMonitor
from components.k8s_pod import expand_env

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
BYO_VENV = ROOT / ".venv-byo"
BYO_BIN = BYO_VENV / "bin"
# The kubelet sends an HTTP probe to the pod's IP, so its Host header is "<pod IP>:<port>". A
# stand-in that is not 127.0.0.1, so an app that accepts only the hosts it was told of shows it.
PROBE_POD_IP = "10.244.0.17"


def missing_byo_venv() -> str | None:
    missing = [b for b in ("python", "uvicorn", "alembic", "gunicorn") if not (BYO_BIN / b).exists()]
    if missing:
        return (f"{BYO_VENV} has no {', '.join(missing)} (the byo apps' packages, "
                f"tests/byo_app/requirements.txt): run tools/setup (./tools/test does)")
    return None


@dataclass(frozen=True)
class Image:
    """What the app's image gives a container besides the pod spec: its files (the app's
    folder, copied to `root`), its WORKDIR and its ENV."""

    dir: Path
    workdir: str = "/app"
    env: Mapping[str, str] = field(default_factory=dict)
    root: str = "/app"
    bin: Path = BYO_BIN  # where the image's python and its packages' commands are, here


@dataclass(frozen=True)
class Database:
    """Where the rendered env points the database (`host`, `port`), and the test PostgreSQL's port."""

    host: str
    port: int
    local_port: int
    local_host: str = HOST


@dataclass
class Local:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    substitutions: list[str]


def secret_data(monitor: RecordingMonitor) -> dict[str, dict[str, str]]:
    """Kubernetes Secret name -> its stringData, as the program registered it (unmasked)."""
    out = {}
    for reg in monitor.all("kubernetes:core/v1:Secret"):
        name = (reg.state.get("metadata") or {}).get("name") or (reg.inputs.get("metadata") or {}).get("name")
        out[name] = dict(reg.plain_inputs.get("stringData") or {})
    return out


@dataclass
class Render:
    """A rendered stack: its out/<stack>/ dir and the mock engine's record (the Secrets' values)."""

    stack: str
    dir: Path
    monitor: RecordingMonitor
    outputs: dict[str, Any]
    additions: list[str] = field(default_factory=list)  # what the test changed in the stack config

    def container(self, pattern: str) -> Container:
        return Container(self.dir, pattern, self.monitor)

    def manifest(self, kind: str) -> dict[str, Any]:
        """The one object of `kind` in the render."""
        found = [obj for path in sorted((self.dir / "manifests").glob("*.yaml"))
                 if (obj := yaml.safe_load(path.read_text())).get("kind") == kind]
        assert len(found) == 1, f"expected one {kind} in {self.dir}/manifests, found {len(found)}"
        return found[0]

    def pod_spec(self) -> dict[str, Any]:
        return self.manifest("Deployment")["spec"]["template"]["spec"]

    def pod_container(self, name: str) -> dict[str, Any]:
        pod = self.pod_spec()
        return next(c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == name)

    @property
    def namespace(self) -> str:
        return self.outputs["namespace"]


class Container:
    """One rendered container: its run file, checked against its manifest."""

    def __init__(self, render_dir: Path, pattern: str, monitor: RecordingMonitor) -> None:
        self.run = RenderedRun.find(render_dir, pattern)
        self.doc: dict[str, Any] = self.run.doc
        self.env_entries: list[dict[str, Any]] = list(self.doc.get("env") or [])
        self.secrets = secret_data(monitor)
        self.pod, self.spec = self._container_spec(render_dir)
        # The run file is the manifest's container, as the kubelet gets it: same order, same refs.
        assert self.doc["command"] == (self.spec.get("command") or [])
        assert self.doc["args"] == (self.spec.get("args") or [])
        assert self.doc["working_dir"] == self.spec.get("workingDir")
        shown = [{k: v for k, v in e.items() if k != "expands_to"} for e in self.env_entries]
        assert shown == [_run_entry(e) for e in self.spec.get("env") or []]

    def _container_spec(self, render_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the pod spec, this container's spec) from the manifest."""
        kind, _, rest = self.run.path.name.removesuffix(".json").partition("-")
        name, _, container = rest.rpartition(".")
        for path in sorted((render_dir / "manifests").glob("*.yaml")):
            obj = yaml.safe_load(path.read_text())
            if obj.get("kind") != kind or (obj.get("metadata") or {}).get("name") != name:
                continue
            pod = obj["spec"]["template"]["spec"]
            return pod, next(c for c in [*pod.get("initContainers", []), *pod["containers"]]
                             if c["name"] == container)
        raise AssertionError(f"no {kind} {name} in {render_dir}/manifests")

    def mount_paths(self, volume_kind: str) -> list[str]:
        """Where this container mounts the pod's volumes of one kind ("csi", "emptyDir", ...)."""
        kinds = {v["name"]: v for v in self.pod.get("volumes") or []}
        return [m["mountPath"] for m in self.spec.get("volumeMounts") or []
                if volume_kind in kinds.get(m["name"], {})]

    @property
    def argv(self) -> list[str]:
        return self.run.argv

    @property
    def working_dir(self) -> str | None:
        return self.run.working_dir

    def probes(self) -> dict[str, tuple[str, int]]:
        """startup/readiness/liveness -> (path, port) of the kubelet's HTTP probes."""
        return {kind: (probe["httpGet"]["path"], int(probe["httpGet"]["port"]))
                for kind in ("startup", "readiness", "liveness")
                if (probe := self.spec.get(f"{kind}Probe")) and "httpGet" in probe}

    def local(self, image: Image, *, database: Database, scratch: Path, port: int | None,
              mounts: Mapping[str, Path] | None = None,
              external_secrets: Mapping[str, Mapping[str, str]] | None = None) -> Local:
        made: list[str] = []

        # Container paths -> here: the image's files, the ConfigMaps, the emptyDirs, the caller's.
        paths = {image.root: image.dir}
        for mount, configmap in self.run.files.items():
            paths[mount] = self.run.render_dir / "config" / configmap
        for i, mount in enumerate(self.run.empty_dirs()):
            if mount not in (mounts or {}):
                paths[mount] = scratch / f"emptydir-{i}"
                paths[mount].mkdir(parents=True, exist_ok=True)
        for mount, here in (mounts or {}).items():
            paths[mount] = here
            made.append(f"the mount {mount} -> {here}")

        def relocate(value: str) -> str:
            for mount, here in sorted(paths.items(), key=lambda kv: -len(kv[0])):
                if value == mount or value.startswith(mount.rstrip("/") + "/"):
                    new = str(here) + value[len(mount):]
                    made.append(f"{value} -> {new}")
                    return new
            return value

        def move_database(name: str, value: str) -> str:
            if value == database.host:
                new = database.local_host
            elif name == "DATABASE_PORT" and value == str(database.port):
                new = str(database.local_port)
            else:
                new = value.replace(f"@{database.host}:{database.port}/",
                                    f"@{database.local_host}:{database.local_port}/")
            if new != value:
                made.append(f"{name}: the database address {database.host}:{database.port} -> "
                            f"{database.local_host}:{database.local_port}")
            return new

        # The env as the kubelet builds it: sources first (Secret keys, pod fields, plain values),
        # then each $(NAME) expanded in the rendered order.
        entries: list[dict[str, Any]] = []
        resolve: dict[str, str] = {}
        for entry in self.env_entries:
            name = entry["name"]
            if "secret" in entry:
                if entry["secret"] in (external_secrets or {}):
                    data = dict(external_secrets[entry["secret"]])
                    made.append(f"{name}: Secret {entry['secret']} key {entry['key']} (not the program's) "
                                "-> the test's value")
                else:
                    data = self.secrets.get(entry["secret"]) or {}
                    made.append(f"{name}: Secret {entry['secret']} key {entry['key']} -> the program's value")
                assert entry["key"] in data, f"Secret {entry['secret']} has no key {entry['key']}"
                resolve[name] = move_database(name, data[entry["key"]])
                entries.append({"name": name})
            elif "pod_field" in entry:
                # The pod's IP is the probes' Host: the same stand-in, so an app that allows it works.
                resolve[name] = PROBE_POD_IP if entry["pod_field"] == "status.podIP" \
                    else POD_FIELD_STAND_INS[entry["pod_field"]]
                made.append(f"{name}: pod field {entry['pod_field']} -> {resolve[name]}")
                entries.append({"name": name})
            else:
                entries.append({"name": name, "value": move_database(name, str(entry["value"]))})
        expanded = expand_env(entries, resolve)
        assert list(expanded) == [e["name"] for e in entries], "every variable has a value"
        for name, value in expanded.items():
            assert f"{database.host}:{database.port}" not in value and value != database.host, \
                f"{name} still points at the rendered database address"

        # The collector the stack sends traces to is a cluster Service, a name nothing resolves here;
        # an exporter that cannot deliver retries with backoff, and a worker's exit waits for its
        # last flush. A loopback stand-in accepts what it is sent, as the installed collector does.
        endpoint = expanded.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        if ".svc" in endpoint:
            expanded["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector_stand_in()
            made.append(f"OTEL_EXPORTER_OTLP_ENDPOINT: the collector {endpoint} -> {collector_stand_in()} "
                        "(accepts every export, keeps nothing)")

        env = {name: relocate(value) for name, value in image.env.items()}
        made += [f"{name}={image.env[name]}: the image's ENV" for name in image.env]
        env.update({name: relocate(value) for name, value in expanded.items()})
        env["PATH"] = f"{image.bin}:/usr/local/bin:/usr/bin:/bin"
        made.append(f"PATH: the image's Python and packages -> {image.bin}")

        argv = [relocate(a) for a in self.argv]
        if port is not None:
            for flag, new in (("--host", HOST), ("--port", str(port)), ("--bind", f"{HOST}:{port}")):
                if flag in argv:
                    i = argv.index(flag) + 1
                    made.append(f"{flag} {argv[i]} -> {new}")
                    argv[i] = new

        workdir = self.working_dir or image.workdir
        cwd = Path(relocate(workdir))
        if self.working_dir is None:
            made.append(f"working dir: none set, the image's WORKDIR {image.workdir}")
        assert cwd.is_dir(), f"{workdir} -> {cwd}: no such directory in the app"
        return Local(argv, env, cwd, made)


_COLLECTOR: list[str] = []


def collector_stand_in() -> str:
    """An OTLP/HTTP endpoint on loopback answering every export with 200 and an empty response
    (an empty ExportTraceServiceResponse), for the test process's lifetime."""
    if not _COLLECTOR:
        class Accept(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer((HOST, 0), Accept)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _COLLECTOR.append(f"http://{HOST}:{server.server_address[1]}")
    return _COLLECTOR[0]


def _run_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest env entry as the run file shows it (without `expands_to`)."""
    source = entry.get("valueFrom") or {}
    if ref := source.get("secretKeyRef"):
        return {"name": entry["name"], "secret": ref["name"], "key": ref["key"]}
    if ref := source.get("fieldRef"):
        return {"name": entry["name"], "pod_field": ref["fieldPath"]}
    return {"name": entry["name"], "value": entry.get("value")}


def probe_host(port: int) -> dict[str, str]:
    """The Host header of a kubelet HTTP probe to container port `port`."""
    return {"Host": f"{PROBE_POD_IP}:{port}"}


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

