"""A Django pod exactly as the kit renders it, run on loopback: Debian's nginx with the rendered
nginx.conf in front of Gunicorn with the rendered gunicorn.conf.py on its unix socket, each
container's rendered command, and its rendered env expanded as the kubelet expands it
(kubelet.Container); the release Jobs and the init container likewise. Used for the reference
project (tests/django_app) and for a project that is not ours (test_byo_django.py).

The stack is rendered as `python -m cli render` writes it (`render_stack` for an example stack
file, or the byo conftest's `rendered`). Then these substitutions are made and nothing else;
`Pod.substitutions` lists each one as it was made (a test prints them when it fails):

- the image (`Image`): its files (/app) -> the app's folder here, its ENV under the container's
  env, its Python and packages -> a venv here (kubelet.Container.local);
- each emptyDir volume -> one fresh dir under a scratch dir (world-traversable, short enough for
  a unix socket path), mounted wherever the pod mounts that volume: the socket dir both
  containers share, the static root the init container fills and Nginx serves, Nginx's temp dir
  (handed to the user Nginx runs as);
- the rendered config files (ConfigMaps): a copy in which each container path of the volumes its
  container mounts is replaced by that volume's dir here (`rewrite`), and each
  `listen 0.0.0.0:<container port>` by 127.0.0.1 and a free port;
- Secrets: the values the program put in them (the render masks them); a Secret the Secrets
  Store CSI driver syncs, and the files it mounts (`SecretsStoreStandIn`): the test's secret;
  the database address in them (the in-cluster Service or the RDS endpoint, port 5432) -> the
  test PostgreSQL on 127.0.0.1;
- pod fields (downward API) -> stand-ins; status.podIP -> kubelet.PROBE_POD_IP, the Host of the
  kubelet's probes;
- nginx -> Debian's nginx binary, as root run as `nobody` (the pod runs every container as uid
  10001); Gunicorn and the Jobs run as the test's user;
- `extra_env`, which the test using it lists.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import runpy
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "django_plans"))

from harness import Postgres, free_port, run_command  # noqa: E402
from kubelet import Container, Database, Image, Local, Render, probe_host, sql_literal  # noqa: E402
from plans_harness import HOST, Proc, Response, give_to, make_scratch, request, wait_until  # noqa: E402

from cli.offline import run_program  # noqa: E402
from cli.render import ROOT, load_stack_file, write_render  # noqa: E402
from components.database import PORT as DATABASE_PORT  # noqa: E402
from stacks.django.server import SOCKET_DIR  # noqa: E402

NGINX_CONTAINER = "nginx"
APP_CONTAINER = "app"
# The Service's cluster name: the Host a client in the cluster sends (DJANGO_ALLOWED_HOSTS has it).
SERVICE_HOST = "web-app.{namespace}.svc.cluster.local"


def program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def render_stack(stack: str, dest: Path, *, changes: Mapping[str, Any] | None = None,
                 secret: set[str] | None = None) -> Render:
    """`Pulumi.<stack>.yaml` with `changes` (full key -> a value merged into the file's), rendered
    into `dest` as `python -m cli render` writes it. `secret`: full keys the changes make secret
    (as `pulumi config set --secret --path` marks the whole top-level key)."""
    stack_file = load_stack_file(stack)
    config = copy.deepcopy(stack_file.config)
    additions = []
    for key, value in (changes or {}).items():
        config[key] = _merge(config.get(key), value)
        additions.append(f"stack config {key}: {json.dumps(value)}" + (" (secret)" if key in (secret or ()) else ""))
    run = run_program(stack, config, program, set(stack_file.secret_keys) | set(secret or ()))
    write_render(stack, run, dest)
    return Render(stack, dest, run.monitor, dict(run.outputs), additions)


def rendered_value(container: Container, name: str) -> str:
    """A variable of a rendered container as the program set it: a plain value, or the content of
    the Secret it comes from."""
    entry = next(e for e in container.env_entries if e["name"] == name)
    if "secret" in entry:
        return container.secrets[entry["secret"]][entry["key"]]
    return entry["value"]


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in change.items()}}
    return copy.deepcopy(change)


class SecretsStoreStandIn:
    """What the Secrets Store CSI driver makes of the render's SecretProviderClasses when Secrets
    Manager holds `secret` (a JSON document, as RDS keeps its password): for each class, a dir of
    files (each objectAlias, the jmesPath's value) that pods mount, and the Kubernetes Secret it
    syncs (secretObjects)."""

    def __init__(self, render: Render, secret: Mapping[str, str], root: Path) -> None:
        self.dirs: dict[str, Path] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        for path in sorted((render.dir / "manifests").glob("secretproviderclass-*.yaml")):
            spc = yaml.safe_load(path.read_text())
            files: dict[str, str] = {}
            for obj in json.loads(spc["spec"]["parameters"]["objects"]):
                files[obj["objectAlias"]] = json.dumps(dict(secret))
                for pick in obj.get("jmesPath", []):
                    files[pick["objectAlias"]] = secret[pick["path"]]
            here = root / spc["metadata"]["name"]
            here.mkdir(parents=True)
            for name, content in files.items():
                (here / name).write_text(content)
            self.dirs[spc["metadata"]["name"]] = here
            for synced in spc["spec"].get("secretObjects", []):
                self.secrets[synced["secretName"]] = {d["key"]: files[d["objectName"]] for d in synced["data"]}


def rewrite(text: str, paths: Mapping[str, Path], ports: Mapping[int, int], *, what: str,
            made: list[str]) -> str:
    """`text` (a rendered config file) with each container path in `paths` (where it sits here)
    and each `listen 0.0.0.0:<port>` in `ports` (-> 127.0.0.1:<free port>) replaced; each
    replacement recorded in `made`."""
    if paths:
        # One pass, longest path first, so a replacement is never replaced again; a whole path or
        # a path under it, never a longer name that merely starts with it.
        mounts = sorted(paths, key=len, reverse=True)
        pattern = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, mounts))})(?=[/'\";\s]|$)", re.M)
        counts = dict.fromkeys(mounts, 0)

        def here(match: re.Match) -> str:
            counts[match[1]] += 1
            return str(paths[match[1]])

        text = pattern.sub(here, text)
        made += [f"{what}: {mount} -> {paths[mount]} ({n}x)" for mount, n in counts.items() if n]
    for container_port, port in ports.items():
        old, new = f"listen 0.0.0.0:{container_port}", f"listen 127.0.0.1:{port}"
        assert old in text, f"{what}: no {old!r}"
        text = text.replace(old, new)
        made.append(f"{what}: {old} -> {new}")
    return text


def create_role(pg: Postgres, user: str, password: str, database: str) -> None:
    """The kit's database and its user, as the in-cluster server (POSTGRES_USER, POSTGRES_DB) or
    RDS (the master user) creates them."""
    pg.psql("postgres", f'CREATE ROLE "{user}" LOGIN PASSWORD {sql_literal(password)}')
    pg.psql("postgres", f'CREATE DATABASE "{database}" OWNER "{user}"')


@dataclass
class Pod:
    """The Deployment's pod on loopback: its volumes and config files here at once; `run_job()`
    runs a release Job or the init container to completion; `start()` starts the two containers
    (again after `stop()`, as a restart in the same pod); `close()` removes it all."""

    render: Render
    image: Image
    postgres: Postgres
    nginx_bin: str
    nginx_user: tuple[int, int] | None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    csi: SecretsStoreStandIn | None = None
    # container -> volumes it mounts besides the manifest's (at the path the other containers use):
    # a workaround for a kit bug, listed by the test that needs it.
    substitutions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.substitutions += self.render.additions
        self.scratch = make_scratch()
        try:
            self._lay_out()
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise

    def _lay_out(self) -> None:
        """The pod's volumes, ports and config files here."""
        self.logs = self.scratch / "logs"
        self.logs.mkdir()
        pod = self.render.pod_spec()
        self.volumes: dict[str, Path] = {}
        for volume in pod.get("volumes") or []:
            if "emptyDir" in volume:
                here = self.volumes[volume["name"]] = self.scratch / volume["name"]
                here.mkdir(mode=0o755)
                here.chmod(0o755)
                self.substitutions.append(f"emptyDir {volume['name']} -> {here}")
            elif "csi" in volume:
                assert self.csi is not None, f"the pod mounts the CSI volume {volume['name']}: pass `csi`"
                self.volumes[volume["name"]] = self.csi.dirs[volume["csi"]["volumeAttributes"]["secretProviderClass"]]
        # What Nginx writes: owned by Nginx's user, as the pod's fsGroup makes an emptyDir its user's.
        for mount in self.render.pod_container(NGINX_CONTAINER)["volumeMounts"]:
            if mount["name"] in self.volumes and not mount.get("readOnly") and mount["name"] != self._socket_volume():
                give_to(self.volumes[mount["name"]], self.nginx_user)
        nginx_ports = {p["name"]: p["containerPort"] for p in self.render.pod_container(NGINX_CONTAINER)["ports"]}
        self.ports = {container_port: free_port() for container_port in nginx_ports.values()}
        self.port = self.ports[nginx_ports["http"]]
        self.metrics_port = self.ports.get(nginx_ports.get("metrics"))
        self.container_port = nginx_ports["http"]
        self.config = {name: self._config_dir(name) for name in (APP_CONTAINER, NGINX_CONTAINER)}
        self.nginx: Proc | None = None
        self.gunicorn: Proc | None = None

    # -- where the pod's paths are here -----------------------------------------------------

    def _socket_volume(self) -> str:
        """The volume of Gunicorn's socket, which both containers mount: Nginx only connects to it."""
        app = {m["name"] for m in self.render.pod_container(APP_CONTAINER)["volumeMounts"]
               if m["mountPath"] == SOCKET_DIR}
        proxy = {m["name"] for m in self.render.pod_container(NGINX_CONTAINER)["volumeMounts"]
                 if m["mountPath"] == SOCKET_DIR}
        shared = [name for name in app & proxy if name in self.volumes]
        assert len(shared) == 1, shared
        return shared[0]

    def mounts(self, container: str) -> dict[str, Path]:
        """Container path -> here, for the emptyDir and CSI volumes `container` mounts."""
        found = {m["mountPath"]: self.volumes[m["name"]] for m in self.render.pod_container(container)["volumeMounts"]
                 if m["name"] in self.volumes}
        return found

    def _config_dir(self, container: str) -> tuple[str, Path]:
        """(mount path, a copy of the rendered ConfigMap's files with the pod's paths and
        listeners rewritten to these) for the one ConfigMap `container` mounts."""
        run = self.render.container(f"Deployment-*.{container}.json").run
        assert len(run.files) == 1, run.files
        (mount, configmap), = run.files.items()
        copy_dir = self.scratch / f"config-{container}"
        copy_dir.mkdir(mode=0o755)
        ports = self.ports if container == NGINX_CONTAINER else {}
        for source in sorted((self.render.dir / "config" / configmap).iterdir()):
            text = rewrite(source.read_text(), self.mounts(container), ports, what=f"{configmap}/{source.name}",
                           made=self.substitutions)
            (copy_dir / source.name).write_text(text)
        self.substitutions.append(f"ConfigMap {configmap} at {mount} -> {copy_dir}")
        return mount, copy_dir

    # -- the containers and Jobs --------------------------------------------------------------

    def database(self) -> Database:
        return Database(host=self.render.outputs["database_host"], port=DATABASE_PORT, local_port=self.postgres.port)

    def local(self, container: Container, scratch_name: str, mounts: Mapping[str, Path] | None = None) -> Local:
        local = container.local(self.image, database=self.database(), scratch=self.scratch / scratch_name, port=None,
                                mounts=mounts, external_secrets=self.csi.secrets if self.csi else None)
        for name, value in self.extra_env.items():
            local.env[name] = value
            local.substitutions.append(f"{name}: added, {value}")
        return local

    def run_job(self, pattern: str, timeout: float = 180):
        """A release Job (or the init container, `Deployment-*.init.json`) as rendered, to
        completion: (its result, what it was given)."""
        container = self.render.container(pattern)
        if pattern.startswith("Deployment-"):  # the init container: the pod's volumes
            mounts = self.mounts(container.spec["name"])
        else:  # a Job's own emptyDirs are fresh; its CSI volume holds the same files
            assert self.csi is not None or not container.mount_paths("csi")
            csi = {v["name"]: v["csi"]["volumeAttributes"]["secretProviderClass"]
                   for v in container.pod.get("volumes") or [] if "csi" in v}
            mounts = {m["mountPath"]: self.csi.dirs[csi[m["name"]]]
                      for m in container.spec.get("volumeMounts") or [] if m["name"] in csi}
        local = self.local(container, container.run.path.stem, mounts)
        self._note(f"{container.run.path.name}: {s}" for s in local.substitutions)
        return run_command(local.argv, local.env, local.cwd, timeout=timeout), local

    def start(self) -> Pod:
        """Nginx, then Gunicorn (the kubelet starts both at once; Nginx answers 502 until the
        socket is there); ready when the app container's startup probe passes through Nginx."""
        proxy = self.render.container(f"Deployment-*.{NGINX_CONTAINER}.json")
        mount, conf_dir = self.config[NGINX_CONTAINER]
        assert proxy.argv[0] == "nginx", proxy.argv
        argv = [self.nginx_bin, *(str(conf_dir) + a[len(mount):] if a.startswith(mount + "/") else a
                                  for a in proxy.argv[1:])]
        self._note([f"nginx: {' '.join(proxy.argv)} -> {' '.join(argv)}"])
        self.nginx = Proc("nginx", argv, log_dir=self.logs, user=self.nginx_user)

        app = self.render.container(f"Deployment-*.{APP_CONTAINER}.json")
        conf_mount, conf_copy = self.config[APP_CONTAINER]
        local = self.local(app, "app", {**self.mounts(APP_CONTAINER), conf_mount: conf_copy})
        self._note(f"app: {s}" for s in local.substitutions)
        self.app_env = local.env
        self.gunicorn = Proc("gunicorn", local.argv, log_dir=self.logs, env=local.env, cwd=local.cwd)

        path, port = app.probes()["startup"]
        assert port == self.container_port, "the app's probes go through Nginx's port"
        wait_until(lambda: self.get(path, headers=probe_host(port)).status == 200, 60,
                   f"the startup probe {path} through Nginx", self.gunicorn)
        return self

    def _note(self, made) -> None:
        """Records substitutions, each once (a restart or a second run makes the same ones)."""
        self.substitutions += [line for line in made if line not in self.substitutions]

    def stop(self) -> None:
        for proc in (self.nginx, self.gunicorn):
            if proc is not None:
                proc.stop()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- requests ---------------------------------------------------------------------------

    def get(self, path: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10,
            source: str | None = None) -> Response:
        """One GET to Nginx's port on a new connection (from `source`, a loopback address, when given)."""
        if source is None:
            return request(self.port, path, headers=headers, timeout=timeout)
        return request_from(source, self.port, path, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 10) -> Response:
        return request(self.port, path, method=method, body=body, headers=headers, timeout=timeout)

    def access_log(self) -> list[dict[str, Any]]:
        assert self.nginx is not None
        return [json.loads(line) for line in self.nginx.stdout_lines() if line.startswith("{")]

    def access_log_line(self, request_id: str) -> dict[str, Any]:
        """Nginx's JSON line for one request (written just after the response: polled, bounded)."""
        def line() -> dict[str, Any] | None:
            return next((e for e in self.access_log() if e["request_id"] == request_id), None)

        wait_until(lambda: line() is not None, 5, f"the access log line of {request_id}")
        return line()

    @property
    def service_host(self) -> str:
        return SERVICE_HOST.format(namespace=self.render.namespace)

    @property
    def pod_ip_host(self) -> dict[str, str]:
        return probe_host(self.container_port)


def request_from(source: str, port: int, path: str, *, headers: Mapping[str, str] | None = None,
                 timeout: float = 10) -> Response:
    """A request whose connection comes from `source`, another loopback address (127.0.0.0/8 is
    all on lo): a client that is not the load balancer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        return Response(resp.status, resp.msg, resp.read())
    finally:
        conn.close()
