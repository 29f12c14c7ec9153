"""Offline render: run the real program under mocks and write what it would create.

`out/<stack>/resources.json`  every resource: name, type, parent, dependencies,
                              protect / retain_on_delete, inputs (secrets "[secret]")
`out/<stack>/resources.md`    the same for a reviewer, grouped by component
`out/<stack>/manifests/`      one YAML per Kubernetes object (Helm releases: chart, version, values)
`out/<stack>/config/`         generated server and tool configs (ConfigMap files, Helm values, Prometheus rules)

Output is byte-identical for the same config. A bad config writes nothing.
"""

from __future__ import annotations

import json
import re
import runpy
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.mocks import SECRET_MARK, Registration
from components.k8s_pod import env_references, expand_env
from cli.offline import PROJECT, ProgramRun, run_program

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
DEFAULT_STACK = "fastapi-dev"


@dataclass(frozen=True)
class StackFile:
    """A `Pulumi.<stack>.yaml` as the Pulumi CLI would hand it to the program."""

    stack: str
    config: dict[str, Any]
    secret_keys: frozenset[str]  # full keys, e.g. "webstack:app"


def example_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_stack_file(stack: str, root: Path = ROOT) -> StackFile:
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(example_stacks(root)) or "none"
        raise SystemExit(f"no stack file {path.name} (stacks here: {known})")
    doc = yaml.safe_load(path.read_text()) or {}
    config: dict[str, Any] = dict(_project_defaults(root))
    secret: set[str] = set()
    for full_key, value in (doc.get("config") or {}).items():
        if ":" not in full_key:
            full_key = f"{PROJECT}:{full_key}"
        plain, had_secret = _decrypt_offline(value, full_key)
        config[full_key] = plain
        if had_secret:
            secret.add(full_key)
    return StackFile(stack, config, frozenset(secret))


def _project_defaults(root: Path) -> dict[str, Any]:
    """Defaults declared in Pulumi.yaml apply where the stack file is silent (as in the CLI)."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    out = {}
    for name, decl in (project.get("config") or {}).items():
        if isinstance(decl, dict) and "default" in decl:
            out[name if ":" in name else f"{PROJECT}:{name}"] = decl["default"]
    return out


def _decrypt_offline(value: Any, where: str) -> tuple[Any, bool]:
    """Secure values can't be decrypted offline; each becomes a stable stand-in, still secret."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"offline-secret-{where}", True
    if isinstance(value, dict):
        pairs = {k: _decrypt_offline(v, f"{where}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        pairs = [_decrypt_offline(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    return value, False


def run_stack(stack: str, root: Path = ROOT) -> ProgramRun:
    """Runs `__main__.py` for `stack` under mocks. Raises ConfigError on bad config."""
    stack_file = load_stack_file(stack, root)

    def program() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    return run_program(stack, stack_file.config, program, stack_file.secret_keys)


# --- writing -------------------------------------------------------------------------

def render(stack: str, out_dir: Path, root: Path = ROOT) -> Path:
    """Renders one stack into `out_dir/<stack>/`, replacing what was there only on success."""
    run = run_stack(stack, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stack}-", dir=out_dir))
    try:
        write_render(stack, run, staging)
        final = out_dir / stack
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def write_render(stack: str, run: ProgramRun, dest: Path) -> None:
    regs = sorted(run.monitor.all(), key=lambda r: r.urn)
    (dest / "manifests").mkdir(parents=True)
    (dest / "config").mkdir()
    doc = {"stack": stack, "project": PROJECT, "outputs": run.outputs,
           "resources": [_resource_entry(r) for r in regs]}
    _write(dest / "resources.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    _write(dest / "resources.md", resources_markdown(stack, regs, run.outputs))
    for reg in regs:
        manifest = kubernetes_object(reg)
        if manifest is not None:
            _write(dest / "manifests" / manifest_filename(manifest),
                   _yaml(manifest))
            for name, how in container_runs(manifest).items():
                _write(dest / "config" / "run" / name, json.dumps(how, indent=2, sort_keys=True) + "\n")
        for name, content in config_files(reg).items():
            _write(dest / "config" / name, content)
        if reg.type == "kubernetes:helm.sh/v3:Release" and reg.custom:
            # A release's values, as the chart receives them: what a reviewer compares with its docs.
            _write(dest / "config" / "helm" / f"{_slug(reg.inputs.get('name') or reg.name)}.values.yaml",
                   _yaml(reg.inputs.get("values") or {}))
        if reg.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule":
            # The rules as a Prometheus rule file: `promtool check rules` reads it as is.
            meta = reg.inputs.get("metadata") or {}
            _write(dest / "config" / "prometheus-rules" / f"{_slug(meta.get('namespace'))}-{_slug(meta.get('name'))}.yaml",
                   _yaml(reg.inputs.get("spec") or {}, sort_keys=False))


# libyaml's emitter when PyYAML has it (its Linux and macOS wheels do): 8x faster than the
# pure-Python one, which was a third of a 100-service render (bench/RESULTS.md). The documents
# load back the same; only how a long string wraps differs between the two.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(data: Any, *, sort_keys: bool = True) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=sort_keys, default_flow_style=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _short(urn: str | None) -> str | None:
    """urn:pulumi:stack::webstack::a$b$type::name -> type::name (unique within a stack)."""
    if not urn:
        return None
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}"


def _resource_entry(reg: Registration) -> dict[str, Any]:
    parent = _short(reg.parent)
    return {
        "name": reg.name,
        "type": reg.type,
        "urn": reg.urn,
        "parent": None if parent and parent.startswith("pulumi:pulumi:Stack::") else parent,
        "dependencies": sorted(filter(None, map(_short, reg.dependencies))),
        "protect": reg.protect,
        "retain_on_delete": reg.retain_on_delete,
        "delete_before_replace": reg.delete_before_replace,
        "replace_on_changes": sorted(reg.replace_on_changes),
        "aliases": reg.aliases,
        "inputs": reg.inputs,
    }


# --- Kubernetes objects and config files ---------------------------------------------

def kubernetes_object(reg: Registration) -> dict[str, Any] | None:
    """The object as the API server would receive it (autonamed metadata filled in)."""
    if not reg.type.startswith("kubernetes:") or not reg.custom:
        return None
    if reg.type == "kubernetes:helm.sh/v3:Release":
        keep = ("chart", "version", "namespace", "name", "repositoryOpts", "values")
        return {"kind": "HelmRelease (pulumi)", **{k: reg.inputs[k] for k in keep if k in reg.inputs}}
    obj = {k: v for k, v in reg.inputs.items() if k not in {"__defaults"}}
    if "kind" not in obj or "apiVersion" not in obj:
        return None
    meta = dict(obj.get("metadata") or {})
    state_meta = reg.state.get("metadata") or {}
    for field in ("name", "namespace"):
        if field not in meta and field in state_meta:
            meta[field] = state_meta[field]
    obj["metadata"] = meta
    if obj["kind"] == "Secret":
        # Keys are not secret, values are: keep the shape a validator can check.
        for field in ("data", "stringData"):
            if field in reg.plain_inputs:
                obj[field] = {k: SECRET_MARK for k in sorted(reg.plain_inputs[field] or {})}
    return obj


def manifest_filename(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    parts = [obj.get("kind", "object"), meta.get("namespace"), meta.get("name") or obj.get("name")]
    return "-".join(_slug(p) for p in parts if p) + ".yaml"


def config_files(reg: Registration) -> dict[str, str]:
    """Files carried by ConfigMaps land in config/<configmap>/<file>."""
    if reg.type != "kubernetes:core/v1:ConfigMap":
        return {}
    name = (reg.state.get("metadata") or {}).get("name") or reg.name
    data = reg.inputs.get("data") or {}
    return {f"{_slug(name)}/{fname}": text for fname, text in sorted(data.items()) if isinstance(text, str)}


WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}


def container_runs(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """How each container of a workload, init containers included, starts:
    config/run/<Kind>-<name>.<container>.json.

    The command, its env in the container's order (a Secret's key and a pod field shown by
    reference; a value with `$(NAME)` references also as the kubelet will expand it), which
    ConfigMap appears at which path and which paths are writable emptyDirs: enough to review a
    server's settings, or to run the same command elsewhere."""
    if obj.get("kind") not in WORKLOADS:
        return {}
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    config_maps = {v["name"]: v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v}
    empty = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    runs = {}
    # Init containers too: what they run (on local Django, collectstatic) decides whether the pod starts.
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        env: list[dict[str, Any]] = []
        stand_ins: dict[str, str] = {}
        for e in c.get("env") or []:
            source = e.get("valueFrom") or {}
            if ref := source.get("secretKeyRef"):
                env.append({"name": e["name"], "secret": ref.get("name"), "key": ref.get("key")})
                stand_ins[e["name"]] = f"<Secret {ref.get('name')} key {ref.get('key')}>"
            elif field := source.get("fieldRef"):
                env.append({"name": e["name"], "pod_field": field.get("fieldPath")})
                stand_ins[e["name"]] = f"<pod field {field.get('fieldPath')}>"
            else:
                env.append({"name": e["name"], "value": e.get("value")})
        expanded = expand_env(c.get("env") or [], stand_ins)
        for entry in env:
            if "value" in entry and env_references(str(entry["value"])):
                entry["expands_to"] = expanded[entry["name"]]
        files = {m["mountPath"]: config_maps[m["name"]] for m in c.get("volumeMounts") or []
                 if m.get("name") in config_maps}
        name = f"{obj['kind']}-{_slug((obj.get('metadata') or {}).get('name', ''))}.{_slug(c['name'])}.json"
        writable = sorted(m["mountPath"] for m in c.get("volumeMounts") or [] if m.get("name") in empty)
        runs[name] = {"command": c.get("command") or [], "args": c.get("args") or [], "env": env,
                      "files": files, "empty_dirs": writable, "working_dir": c.get("workingDir")}
    return runs


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", str(text).lower()).strip("-")


# --- the reviewer's table ------------------------------------------------------------

def resources_markdown(stack: str, regs: list[Registration], outputs: dict[str, Any]) -> str:
    by_parent: dict[str | None, list[Registration]] = defaultdict(list)
    for reg in regs:
        parent = _short(reg.parent)
        by_parent[None if parent and parent.startswith("pulumi:pulumi:Stack") else parent].append(reg)
    counts = Counter(r.type for r in regs)
    lines = [f"# {PROJECT} / {stack}", "",
             f"{len(regs)} resources ({sum(1 for r in regs if r.custom)} cloud or cluster objects, "
             f"{sum(1 for r in regs if not r.custom)} components); "
             f"{sum(1 for r in regs if r.protect)} protected.", ""]
    lines += ["## Counts by type", "", "| type | count |", "|---|---:|"]
    lines += [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
    lines += [""]
    for parent in sorted(by_parent, key=lambda p: (p is not None, p or "")):
        title = "Stack (top level)" if parent is None else f"Component `{parent}`"
        lines += [f"## {title}", "", "| name | type | flags | depends on |", "|---|---|---|---|"]
        for reg in by_parent[parent]:
            flags = ", ".join(f for f, on in (("protect", reg.protect), ("retain", reg.retain_on_delete),
                                              ("delete-before-replace", reg.delete_before_replace)) if on)
            deps = ", ".join(f"`{d}`" for d in sorted(filter(None, map(_short, reg.dependencies))))
            lines.append(f"| {reg.name} | `{reg.type}` | {flags} | {deps} |")
        lines.append("")
    if outputs:
        lines += ["## Stack outputs", "", "| output | value |", "|---|---|"]
        lines += [f"| {k} | `{json.dumps(v, sort_keys=True)}` |" for k, v in sorted(outputs.items())]
        lines.append("")
    return "\n".join(lines)
