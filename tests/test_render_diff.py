"""`python -m cli diff`: the summary a reviewer reads in the pull request's job summary, from two
offline renders. A changed config must show up as what the engine will do: added, deleted,
replaced (data in them gone, pods rolled) or changed in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.diff import diff_renders, diff_stack, markdown, replacement_fields, text
from cli.render import ROOT, render

STACK = "fastapi-dev"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/5e0c7a4b-3f1d-4e2a-9b8c-7d6e5f4a3b2c"


def project_with(tmp: Path, change) -> Path:
    """A copy of the project whose Pulumi.fastapi-dev.yaml is changed by `change(config)`."""
    tmp.mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp / name)
    doc = yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())
    change(doc["config"])
    (tmp / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(doc))
    return tmp


def _move_drop_database_add_domain(config: dict[str, Any]) -> None:
    config["webstack:namespace"] = "orders"                   # every namespaced object moves
    config["webstack:fastapi"]["database"]["enabled"] = False  # RDS and the migrations go
    config["webstack:app"]["domain"] = "api.acme.example"     # an Ingress comes
    config["webstack:app"]["certificate_arn"] = CERTIFICATE


def _add_secret(config: dict[str, Any]) -> None:
    config["webstack:app"]["secrets"] = {"SENTRY_DSN": {"secure": "v1:c2VudHJ5:ZHNu=="}}


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Path:
    """out/base, out/moved and out/secret, each holding fastapi-dev's render."""
    tmp = tmp_path_factory.mktemp("renders")
    render(STACK, tmp / "base")
    render(STACK, tmp / "moved", root=project_with(tmp / "moved-project", _move_drop_database_add_domain))
    render(STACK, tmp / "secret", root=project_with(tmp / "secret-project", _add_secret))
    render(STACK, tmp / "same", root=project_with(tmp / "same-project", lambda config: None))
    return tmp


def names(items) -> set[str]:
    return {getattr(item, "resource", item).name for item in items}


def test_the_summary_names_the_resources_added_replaced_and_deleted(renders):
    (diff,) = diff_renders(renders / "base" / STACK, renders / "moved" / STACK)
    assert diff.stack == STACK
    # A new namespace name is a new Namespace, and everything in it is recreated there.
    replaced = {c.resource.name: c.fields for c in diff.replaced}
    assert replaced["web-ns-namespace"] == ("metadata.name",)
    assert replaced["web-app-deployment"] == ("metadata.namespace",)
    assert replaced["web-app-service"] == ("metadata.namespace",)
    assert {"web-db-db", "web-migrate-job", "web-db-sg"} <= names(diff.deleted)
    assert "web-app-ingress" in names(diff.added)
    assert not names(diff.added) & names(diff.deleted)
    assert diff.counts["aws:rds/instance:Instance"] == (1, 0)
    assert diff.counts["kubernetes:networking.k8s.io/v1:Ingress"] == (0, 1)

    summary = markdown([diff])
    sections = {title: summary.split(f"**{title}**", 1)[1].split("**", 1)[0]
                for title in ("Replaced (deleted, then created anew)", "Deleted", "Added")}
    assert "`web-ns-namespace` (`kubernetes:core/v1:Namespace`): `metadata.name`" in sections[
        "Replaced (deleted, then created anew)"]
    assert "`web-db-db` (`aws:rds/instance:Instance`)" in sections["Deleted"]
    assert "`web-app-ingress` (`kubernetes:networking.k8s.io/v1:Ingress`)" in sections["Added"]
    assert f"| {STACK} | {len(diff.added)} | {len(diff.deleted)} | {len(diff.replaced)} | 0 |" in summary


def test_a_new_secret_reruns_the_migration_job_and_rolls_the_deployment_in_place(renders):
    (diff,) = diff_renders(renders / "base" / STACK, renders / "secret" / STACK)
    assert not diff.added and not diff.deleted
    # A Job's template is immutable: the provider replaces the Job, so the migrations run again.
    assert {c.resource.name: c.fields for c in diff.replaced} == {
        "web-migrate-job": ("spec.template.spec.containers[0].env",)}
    assert {c.resource.name: c.fields for c in diff.changed}["web-app-deployment"] == (
        "spec.template.spec.containers[0].env",)
    assert "update  kubernetes:apps/v1:Deployment  web-app-deployment" in text([diff])


def test_the_same_config_rendered_twice_shows_no_change(renders):
    (diff,) = diff_renders(renders / "base" / STACK, renders / "same" / STACK)
    assert diff.unchanged
    assert all(before == after for before, after in diff.counts.values())


def test_folders_of_renders_are_compared_stack_by_stack(renders, tmp_path):
    # The base branch did not have the stack yet: it is all new, not an error.
    (diff,) = diff_renders(tmp_path / "no-base-render", renders / "moved")
    assert not diff.base_rendered and not diff.deleted and len(diff.added) == diff.total[1]
    (diff,) = diff_renders(renders / "base", renders / "moved")
    assert "web-app-ingress" in names(diff.added)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "diff", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_command_prints_the_markdown_summary(renders):
    result = _cli(str(renders / "base"), str(renders / "moved"), "--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## What this change does to the resources")
    assert f"### {STACK}" in result.stdout and "`web-db-db`" in result.stdout


def test_the_command_without_a_head_render_says_so_and_exits_2(renders, tmp_path):
    result = _cli(str(renders / "base"), str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "missing: no such folder" in result.stderr and "Traceback" not in result.stderr


# --- what forces a replacement, resource by resource --------------------------------------------

def entry(rtype: str, inputs: dict[str, Any], *, urn: str | None = None, name: str = "r",
          replace_on_changes: tuple[str, ...] = (), aliases: tuple[str, ...] = (), protect: bool = False) -> dict:
    return {"urn": urn or f"urn:pulumi:s::webstack::{rtype}::{name}", "type": rtype, "name": name,
            "inputs": inputs, "replace_on_changes": list(replace_on_changes), "aliases": list(aliases),
            "protect": protect}


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.mark.parametrize("rtype,before,after,forced", [
    # Kubernetes: identity, and the immutable fields pulumi-kubernetes replaces on.
    (DEPLOYMENT, {"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}, ["metadata.name"]),
    (DEPLOYMENT, {"spec": {"selector": {"matchLabels": {"app": "a"}}}},
     {"spec": {"selector": {"matchLabels": {"app": "b"}}}}, ["spec.selector.matchLabels.app"]),
    (DEPLOYMENT, {"spec": {"replicas": 1}}, {"spec": {"replicas": 2}}, []),
    ("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}}, {"data": {"a": "2"}}, ["data.a"]),
    ("kubernetes:core/v1:Secret", {"type": "Opaque"}, {"type": "kubernetes.io/tls"}, ["type"]),
    ("kubernetes:core/v1:Service", {"spec": {"ports": [1]}}, {"spec": {"ports": [2]}}, []),
    ("kubernetes:helm.sh/v3:Release", {"name": "a", "values": {"x": 1}}, {"name": "a", "values": {"x": 2}}, []),
    ("kubernetes:helm.sh/v3:Release", {"name": "a"}, {"name": "b"}, ["name"]),
    # random: every input.
    ("random:index/randomId:RandomId", {"keepers": {"k": "1"}}, {"keepers": {"k": "2"}}, ["keepers.k"]),
    # AWS: names and placement, not settings.
    ("aws:s3/bucket:Bucket", {"bucket": "a"}, {"bucket": "b"}, ["bucket"]),
    ("aws:s3/bucket:Bucket", {"tags": {"a": "1"}}, {"tags": {"a": "2"}}, []),
    ("aws:ec2/securityGroup:SecurityGroup", {"vpcId": "vpc-1"}, {"vpcId": "vpc-2"}, ["vpcId"]),
    ("aws:rds/instance:Instance", {"instanceClass": "db.t4g.micro"}, {"instanceClass": "db.t4g.small"}, []),
])
def test_which_changes_replace_a_resource(rtype, before, after, forced):
    assert replacement_fields(entry(rtype, after), before, after) == forced


def test_a_resource_s_own_replace_on_changes_forces_a_replacement():
    before = {"spec": {"containers": [{"image": "a:1", "name": "app"}]}}
    after = {"spec": {"containers": [{"image": "a:2", "name": "app"}]}}
    resource = entry("webstack:x:Thing", after, replace_on_changes=("spec.containers[*].image",))
    assert replacement_fields(resource, before, after) == ["spec.containers[0].image"]
    assert replacement_fields(entry("webstack:x:Thing", after, replace_on_changes=("*",)), before, after) == [
        "spec.containers[0].image"]
    assert replacement_fields(entry("webstack:x:Thing", after), before, after) == []


def test_a_urn_that_disappears_while_another_appears_is_a_delete_and_an_add():
    old = entry("aws:s3/bucket:Bucket", {"bucket": "a"}, name="static")
    new = entry("aws:s3/bucket:Bucket", {"bucket": "a"}, name="assets")
    diff = diff_stack("s", [old], [new])
    assert names(diff.deleted) == {"static"} and names(diff.added) == {"assets"}
    assert not diff.replaced and not diff.changed


def test_a_rename_the_new_resource_aliases_is_neither_deleted_nor_added():
    old = entry("aws:s3/bucketV2:BucketV2", {"bucket": "a"}, name="static")
    by_urn = entry("aws:s3/bucket:Bucket", {"bucket": "a"}, name="assets", aliases=(old["urn"],))
    by_spec = entry("aws:s3/bucket:Bucket", {"bucket": "a"}, name="static",
                    aliases=("alias(type=aws:s3/bucketV2:BucketV2)",))
    for new in (by_urn, by_spec):
        diff = diff_stack("s", [old], [new])
        assert not diff.deleted and not diff.added and not diff.replaced
        assert [(c.resource.name, c.was) for c in diff.changed] == [(new["name"], old["urn"])]


def test_a_protected_resource_to_replace_is_flagged_in_the_summary():
    before = entry("aws:rds/instance:Instance", {"identifier": "a"}, name="db", protect=True)
    after = entry("aws:rds/instance:Instance", {"identifier": "b"}, name="db", protect=True)
    summary = markdown([diff_stack("s", [before], [after])])
    assert "`db` (`aws:rds/instance:Instance`) **protected**: `pulumi up` refuses" in summary
