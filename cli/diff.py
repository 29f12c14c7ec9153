"""`python -m cli diff BASE HEAD [--markdown]`: what a change does to a stack's resources, read from
two offline renders (`python -m cli render`), without credentials or a backend.

BASE and HEAD are each one render (a folder holding `resources.json`, e.g. `out/fastapi-dev`) or
a folder of renders (`out/`, as `render --all --out` writes it; stacks are matched by name). For
each stack the summary gives the count of each resource type before and after, and the resources

- added: a URN only HEAD has (and no HEAD resource names it as an alias);
- deleted: a URN only BASE has. A URN that disappears while another appears is a delete and an
  add, as for Pulumi, unless the new resource lists the old URN as an alias (a rename);
- replaced: the same URN whose inputs changed in a field that forces a replacement, the engine
  deleting the old object and creating a new one (`pulumi up` refuses it for a protected resource):
  a field the resource lists in `replace_on_changes`; for every Kubernetes object its identity,
  `metadata.name` and `metadata.namespace`, and the immutable fields for which pulumi-kubernetes
  v4 replaces an object (a Job's template, a Deployment's selector, a Secret's or ConfigMap's
  data with the provider's defaults, which the kit keeps, ...); every input of a `random`
  resource; and for AWS resources the fields naming or placing them (a bucket's name, an RDS
  instance's identifier, a security group's VPC, ...), which AWS cannot change in place;
- changed: the same URN with other inputs changed, updated in place.

Replacements are a floor: the providers decide the rest of them at `pulumi preview` (which the
pull-request workflow runs with credentials), and a change to a secret's value is invisible
offline (secrets render as "[secret]"). What this summary adds is that it needs neither.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESOURCES_FILE = "resources.json"
# An input path as a tuple of keys; "*" stands for every element of a list (or value of a map).
FieldPath = tuple[str, ...]

# Fields pulumi-kubernetes v4 replaces an object on (its provider/pkg/provider/diff.go), by type
# token without the `kubernetes:` prefix; every object also on metadata.name and metadata.namespace.
# Secrets and ConfigMaps: with the provider's enableSecretMutable / enableConfigMapMutable off, its
# default and the kit's, any change to their data makes a new object, so pods roll onto it.
KUBERNETES_REPLACE_ON: dict[str, tuple[str, ...]] = {
    "apps/v1:Deployment": ("spec.selector",),
    "apps/v1:DaemonSet": ("spec.selector",),
    "apps/v1:StatefulSet": ("spec.selector", "spec.serviceName", "spec.volumeClaimTemplates",
                            "spec.podManagementPolicy", "spec.revisionHistoryLimit"),
    "batch/v1:Job": ("spec.selector", "spec.template", "spec.completions", "spec.parallelism"),
    "core/v1:Secret": ("type", "data", "stringData"),
    "core/v1:ConfigMap": ("data", "binaryData"),
    "core/v1:Service": ("spec.clusterIP",),
    "core/v1:PersistentVolumeClaim": ("spec.accessModes", "spec.selector", "spec.storageClassName",
                                      "spec.volumeName"),
    "core/v1:ResourceQuota": ("spec.scopes",),
    "rbac.authorization.k8s.io/v1:RoleBinding": ("roleRef",),
    "rbac.authorization.k8s.io/v1:ClusterRoleBinding": ("roleRef",),
    "storage.k8s.io/v1:StorageClass": ("parameters", "provisioner"),
    # A Helm release is identified by its release name and namespace.
    "helm.sh/v3:Release": ("name", "namespace"),
}
KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace")

# AWS fields that name or place a resource: the AWS APIs have no call to change them, so the
# provider replaces the resource. Only the types the kit creates, and only these fields.
AWS_REPLACE_ON: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:rds/instance:Instance": ("identifier", "identifierPrefix", "engine", "dbName", "username",
                                  "storageEncrypted", "kmsKeyId", "availabilityZone"),
    "aws:rds/subnetGroup:SubnetGroup": ("name", "namePrefix"),
    "aws:rds/parameterGroup:ParameterGroup": ("name", "namePrefix", "family", "description"),
    "aws:eks/cluster:Cluster": ("name", "roleArn"),
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("clusterName", "namespace", "serviceAccount"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("vpcId", "cidrBlock", "availabilityZone"),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "namePrefix", "description", "vpcId"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
}


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    name: str
    protect: bool


@dataclass(frozen=True)
class Change:
    """A resource in both renders whose inputs differ: the input paths that did (for a
    replacement, the ones that force it); `was` is the base URN when it was renamed by alias."""

    resource: Resource
    fields: tuple[str, ...]
    was: str | None = None


@dataclass(frozen=True)
class StackDiff:
    stack: str
    counts: dict[str, tuple[int, int]]  # type -> (base, head)
    added: tuple[Resource, ...]
    deleted: tuple[Resource, ...]
    replaced: tuple[Change, ...]
    changed: tuple[Change, ...]
    base_rendered: bool = True
    head_rendered: bool = True

    @property
    def total(self) -> tuple[int, int]:
        return sum(b for b, _ in self.counts.values()), sum(h for _, h in self.counts.values())

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.deleted or self.replaced or self.changed)


# --- reading renders -------------------------------------------------------------------------

def load_renders(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Stack name -> its resources.json entries; `path` is one render or a folder of them."""
    if (path / RESOURCES_FILE).is_file():
        return dict([_read(path)])
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (a render from `python -m cli render`)")
    return dict(_read(d) for d in sorted(path.iterdir()) if (d / RESOURCES_FILE).is_file())


def _read(render_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    doc = json.loads((render_dir / RESOURCES_FILE).read_text())
    return doc.get("stack") or render_dir.name, doc["resources"]


def diff_renders(base: Path, head: Path) -> list[StackDiff]:
    """One StackDiff per stack either side has. A missing BASE folder (a base branch that could
    not be rendered) counts as no stacks there."""
    base_stacks = load_renders(base) if base.exists() else {}
    head_stacks = load_renders(head)
    if (head / RESOURCES_FILE).is_file() and (base / RESOURCES_FILE).is_file():
        # Two single renders are compared whatever their stacks are called (a renamed stack).
        name, head_resources = next(iter(head_stacks.items()))
        return [diff_stack(name, next(iter(base_stacks.values())), head_resources)]
    return [diff_stack(name, base_stacks.get(name), head_stacks.get(name))
            for name in sorted(set(base_stacks) | set(head_stacks))]


# --- comparing -------------------------------------------------------------------------------

def diff_stack(stack: str, base: list[dict[str, Any]] | None, head: list[dict[str, Any]] | None) -> StackDiff:
    """Compares two renders' resource entries (None: that side has no render of the stack)."""
    base_by_urn = {r["urn"]: r for r in base or []}
    head_by_urn = {r["urn"]: r for r in head or []}
    # A renamed resource (its old URN among its aliases) is compared with what it was.
    renamed: dict[str, str] = {}
    for urn, entry in head_by_urn.items():
        if urn in base_by_urn:
            continue
        for alias in alias_urns(entry):
            if alias in base_by_urn and alias not in head_by_urn and alias not in renamed.values():
                renamed[urn] = alias
                break
    added, replaced, changed = [], [], []
    for urn, entry in sorted(head_by_urn.items()):
        before = base_by_urn.get(urn) or base_by_urn.get(renamed.get(urn, ""))
        if before is None:
            added.append(_resource(entry))
            continue
        forced = replacement_fields(entry, before["inputs"], entry["inputs"])
        if forced:
            replaced.append(Change(_resource(entry), tuple(forced), renamed.get(urn)))
            continue
        fields = changed_paths(before["inputs"], entry["inputs"])
        if fields or urn in renamed:
            changed.append(Change(_resource(entry), tuple(fields), renamed.get(urn)))
    gone = set(base_by_urn) - set(head_by_urn) - set(renamed.values())
    deleted = [_resource(base_by_urn[u]) for u in sorted(gone)]
    before_counts = Counter(r["type"] for r in base or [])
    after_counts = Counter(r["type"] for r in head or [])
    counts = {t: (before_counts[t], after_counts[t]) for t in sorted(set(before_counts) | set(after_counts))}
    return StackDiff(stack, counts, tuple(added), tuple(deleted), tuple(replaced), tuple(changed),
                     base_rendered=base is not None, head_rendered=head is not None)


def _resource(entry: dict[str, Any]) -> Resource:
    return Resource(entry["urn"], entry["type"], entry["name"], bool(entry.get("protect")))


def alias_urns(entry: dict[str, Any]) -> list[str]:
    """The URNs a resource's aliases stand for: full URNs as given, and specs as render writes
    them (`alias(name=..., type=..., parent=..., noParent)`) applied to the resource's own URN."""
    out = []
    for alias in entry.get("aliases") or []:
        if alias.startswith("urn:pulumi:"):
            out.append(alias)
            continue
        match = re.fullmatch(r"alias\((.*)\)", alias)
        if match:
            out.append(_apply_alias_spec(entry["urn"], match.group(1)))
    return out


def _apply_alias_spec(urn: str, spec: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent types joined by $, then the type>::<name>
    prefix, project, qualified, name = urn.split("::", 3)
    parents, _, rtype = qualified.rpartition("$")
    fields = dict(p.split("=", 1) if "=" in p else (p, "") for p in (s.strip() for s in spec.split(", ")) if p)
    rtype = fields.get("type", rtype)
    name = fields.get("name", name)
    if "noParent" in fields:
        parents = ""
    elif "parent" in fields:
        parents = fields["parent"].split("::")[2]
    return f"{prefix}::{project}::{parents + '$' if parents else ''}{rtype}::{name}"


def replacement_fields(entry: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The changed input paths (with list indexes) that make the engine replace this resource."""
    rtype = entry["type"]
    patterns: list[str] = list(entry.get("replace_on_changes") or [])
    if rtype.startswith("kubernetes:"):
        kind = rtype.removeprefix("kubernetes:")
        # A Helm release has no metadata: its identity is in the table.
        patterns += (() if kind.startswith("helm.sh/") else KUBERNETES_IDENTITY) + KUBERNETES_REPLACE_ON.get(kind, ())
    patterns += AWS_REPLACE_ON.get(rtype, ())
    if rtype.startswith("random:") or "*" in patterns:
        return changed_paths(before, after)
    forced: list[str] = []
    for pattern in dict.fromkeys(patterns):
        path = parse_path(pattern)
        old, new = values_at(before, path), values_at(after, path)
        for where in sorted(set(old) | set(new)):
            if where not in old or where not in new:
                forced.append(where)
            elif old[where] != new[where]:
                # The fields inside that changed (a Job's template: which env var), not just "spec".
                forced += changed_paths(old[where], new[where], where)
    return list(dict.fromkeys(forced))



def parse_path(text: str) -> FieldPath:
    """`spec.containers[*].image` or `metadata["a.b"]` -> ("spec", "containers", "*", "image")."""
    parts: list[str] = []
    for match in re.finditer(r'\["([^"]*)"\]|\[(\*|\d+)\]|([^.\[\]]+)', text):
        parts.append(next(g for g in match.groups() if g is not None))
    return tuple(parts)


def values_at(value: Any, path: FieldPath, prefix: str = "") -> dict[str, Any]:
    """Concrete path -> value for each place `path` reaches in `value` ("*" expands)."""
    if not path:
        return {prefix: value}
    key, rest = path[0], path[1:]
    if isinstance(value, list):
        indexes = range(len(value)) if key == "*" else [int(key)] if key.isdigit() and int(key) < len(value) else []
        out: dict[str, Any] = {}
        for i in indexes:
            out.update(values_at(value[i], rest, f"{prefix}[{i}]"))
        return out
    if isinstance(value, dict):
        keys = sorted(value) if key == "*" else [key] if key in value else []
        out = {}
        for k in keys:
            out.update(values_at(value[k], rest, f"{prefix}.{k}" if prefix else k))
        return out
    return {}


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The paths where two input trees differ, as deep as both sides have the same shape."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            path = f"{prefix}.{key}" if prefix else key
            if key not in before or key not in after:
                out.append(path)
            else:
                out += changed_paths(before[key], after[key], path)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after)) for p in changed_paths(b, a, f"{prefix}[{i}]")]
    return [] if before == after else [prefix or "(inputs)"]


# --- writing ---------------------------------------------------------------------------------

FIELDS_SHOWN = 4  # changed paths listed per resource; the rest are counted


def _fields(fields: tuple[str, ...]) -> str:
    shown = ", ".join(f"`{f}`" for f in fields[:FIELDS_SHOWN])
    more = len(fields) - FIELDS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _name(r: Resource) -> str:
    return f"`{r.name}` (`{r.type}`)" + (" **protected**: `pulumi up` refuses until it is unprotected" if r.protect else "")


def _headline(d: StackDiff) -> str:
    before, after = d.total
    if not d.head_rendered:
        return f"not rendered by this change ({before} resources before): every resource would be deleted"
    if not d.base_rendered:
        return f"new here, or the base did not render: {after} resources, all added"
    parts = [f"{len(d.added)} added", f"{len(d.deleted)} deleted", f"{len(d.replaced)} replaced",
             f"{len(d.changed)} changed in place"]
    return f"{before} -> {after} resources: " + ", ".join(parts)


def markdown(diffs: list[StackDiff]) -> str:
    """The summary as GitHub-flavoured Markdown (a job summary, a pull-request comment)."""
    lines = ["## What this change does to the resources (offline render)", ""]
    if not diffs:
        return "\n".join(lines + ["No rendered stacks.", ""])
    lines += ["| stack | added | deleted | replaced | changed | resources |", "|---|---:|---:|---:|---:|---|"]
    for d in diffs:
        before, after = d.total
        lines.append(f"| {d.stack} | {len(d.added)} | {len(d.deleted)} | {len(d.replaced)} | {len(d.changed)} "
                     f"| {before} -> {after} |")
    lines.append("")
    for d in diffs:
        lines += [f"### {d.stack}", "", _headline(d), ""]
        if d.unchanged:
            continue
        for title, items in (("Replaced (deleted, then created anew)", d.replaced), ("Deleted", d.deleted),
                             ("Added", d.added), ("Changed in place", d.changed)):
            if not items:
                continue
            lines += [f"**{title}**", ""]
            for item in items:
                if isinstance(item, Change):
                    was = f", renamed from `{item.was}`" if item.was else ""
                    lines.append(f"- {_name(item.resource)}: {_fields(item.fields)}{was}")
                else:
                    lines.append(f"- {_name(item)}")
            lines.append("")
        lines += ["<details><summary>Resources by type, base -> head (changed counts in bold)</summary>", "",
                  "| type | base | head |", "|---|---:|---:|"]
        lines += [f"| `{t}` | {b} | {f'**{h}**' if h != b else h} |" for t, (b, h) in d.counts.items()]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def text(diffs: list[StackDiff]) -> str:
    """The summary for a terminal."""
    lines = []
    for d in diffs:
        lines.append(f"{d.stack}: {_headline(d)}")
        for mark, items in (("replace", d.replaced), ("delete", d.deleted), ("add", d.added), ("update", d.changed)):
            for item in items:
                r = item.resource if isinstance(item, Change) else item
                detail = f"  ({', '.join(item.fields)})" if isinstance(item, Change) and item.fields else ""
                protected = "  [protected]" if r.protect else ""
                lines.append(f"  {mark:<8}{r.type}  {r.name}{detail}{protected}")
    return "\n".join(lines) + "\n"


# --- the command -----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", type=Path, help="the render before the change: out/<stack> or a folder of renders")
    parser.add_argument("head", type=Path, help="the render after it, the same way")
    parser.add_argument("--markdown", action="store_true",
                        help="GitHub Markdown (for $GITHUB_STEP_SUMMARY) instead of plain text")


def command(args: argparse.Namespace) -> int:
    try:
        diffs = diff_renders(args.base, args.head)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"diff: {err}", file=sys.stderr)
        return 2
    if not diffs:
        print(f"diff: no render (a folder with {RESOURCES_FILE}) in {args.head}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown(diffs) if args.markdown else text(diffs))
    return 0
