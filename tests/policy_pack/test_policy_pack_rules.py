"""Each policy of the pack, with a resource that passes and one that violates it, called the way
pulumi-policy calls it (inputs behind its proxies, a collecting report_violation).

Every violation must name the resource (its kind and name), say what is wrong and how to fix it,
and name the kit's config key when the kit created the resource."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from tests.policy_pack.pack import Resource, Stage, policies, policy_named, run, urn

PROD, DEV = Stage("prod", "fastapi"), Stage("dev", "fastapi")

# The parents the kit gives what it creates (its URNs carry them).
FASTAPI = "webstack:stacks:FastApiStack"
DJANGO = "webstack:stacks:DjangoStack"


def kit(type_: str, name: str, component: str, *, stack: str = FASTAPI, **kw) -> Resource:
    return Resource(type_, name, kw.pop("props"), urn=urn(type_, name, (stack, component)), **kw)


# --- resources ---------------------------------------------------------------------------
BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
RDS = "aws:rds/instance:Instance"
CDN = "aws:cloudfront/distribution:Distribution"
EKS = "aws:eks/cluster:Cluster"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DIGEST = "@sha256:" + "ab" * 32


def bucket_with_block(**blocks) -> list[Resource]:
    bucket = Resource(BUCKET, "static", {"bucketPrefix": "static-"})
    flags = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
             "restrictPublicBuckets": True, "bucket": "static-123", **blocks}
    return [bucket, Resource(PAB, "static-block", flags, dependencies=(bucket.urn,))]


def bucket_policy(*statements) -> Resource:
    return Resource("aws:s3/bucketPolicy:BucketPolicy", "static-policy",
                    {"bucket": "static-123", "policy": json.dumps({"Version": "2012-10-17", "Statement": statements})})


KIT_BUCKET_STATEMENTS = (
    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
     "Resource": ["arn:aws:s3:::static-123", "arn:aws:s3:::static-123/*"],
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "AllowCloudFrontRead", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
     "Action": "s3:GetObject", "Resource": "arn:aws:s3:::static-123/*",
     "Condition": {"StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/E1"}}},
)

RDS_PROD = {"storageEncrypted": True, "publiclyAccessible": False, "deletionProtection": True,
            "backupRetentionPeriod": 14, "skipFinalSnapshot": False, "finalSnapshotIdentifier": "db-final",
            "multiAz": True, "engine": "postgres"}


def rds(stack: str = FASTAPI, **changes) -> Resource:
    return kit(RDS, "web-db-db", "webstack:components:Database", stack=stack, props={**RDS_PROD, **changes})


def distribution(viewer_certificate: dict, protocol: str = "redirect-to-https", ordered: list | None = None,
               **kw) -> Resource:
    props = {"defaultCacheBehavior": {"viewerProtocolPolicy": protocol, "targetOriginId": "s3"},
             "orderedCacheBehaviors": ordered or [], "viewerCertificate": viewer_certificate}
    return kit(CDN, "web-static-cdn", "webstack:components:StaticCdn", stack=DJANGO, props=props, **kw)


CUSTOM_CERT = {"acmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x",
               "sslSupportMethod": "sni-only", "minimumProtocolVersion": "TLSv1.2_2021"}

EKS_OK = {"vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": True,
                        "publicAccessCidrs": ["203.0.113.0/24"]},
          "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}},
          "enabledClusterLogTypes": ["api", "audit", "authenticator"]}


def eks(**changes) -> Resource:
    return kit(EKS, "web-cluster-eks", "webstack:components:Cluster", props={**EKS_OK, **changes})


def helm_release(version: str | None = "88.5.3", repo: str = "https://prometheus-community.github.io/helm-charts"
                 ) -> Resource:
    props = {"chart": "kube-prometheus-stack", "name": "kube-prometheus-stack", "repositoryOpts": {"repo": repo},
             **({"version": version} if version is not None else {})}
    return kit("kubernetes:helm.sh/v3:Release", "web-monitoring-stack", "webstack:observability:MonitoringStack",
               props=props)


HARDENED_CONTEXT = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "privileged": False,
                    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def container(name: str = "app", image: str = "ghcr.io/acme/api" + DIGEST, **changes) -> dict:
    return {"name": name, "image": image, "securityContext": dict(HARDENED_CONTEXT), "resources": RESOURCES,
            **changes}


def pod(*containers_, init: list | None = None, context: dict | None = None) -> dict:
    spec = {"securityContext": context if context is not None else {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": list(containers_ or [container()])}
    if init:
        spec["initContainers"] = init
    return spec


def workload(kind: str, spec: dict, name: str = "web-app", component: str = "webstack:components:WebService",
             api: str = "apps/v1") -> Resource:
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    if kind == "CronJob":
        props = {"spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    elif kind == "Pod":
        props = {"spec": spec}
    else:
        props = {"spec": {"template": template}}
    return kit(f"kubernetes:{api}:{kind}", name, component, props=props)


def deployment(spec: dict, **kw) -> Resource:
    return workload("Deployment", spec, **kw)


def root_context(**changes) -> dict:
    return {**HARDENED_CONTEXT, "runAsNonRoot": False, "runAsUser": 0, **changes}


def postgres(retention: str = "Retain", protect: bool = False) -> Resource:
    labels = {"app.kubernetes.io/name": "web-postgres", "app.kubernetes.io/component": "database"}
    spec = {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {"metadata": {"labels": labels},
                         "spec": pod(container("postgres", "docker.io/library/postgres:17.6-bookworm",
                                               ports=[{"containerPort": 5432}]))}}
    return kit(STATEFULSET, "web-postgres-statefulset", "webstack:components:InClusterPostgres",
               props={"metadata": {"namespace": "web"}, "spec": spec}, protect=protect)


def service(type_: str, selector: dict, port: int = 80, target: int = 8000) -> Resource:
    return Resource(SERVICE, f"{type_.lower()}-service", {
        "metadata": {"namespace": "web"},
        "spec": {"type": type_, "selector": selector, "ports": [{"port": port, "targetPort": target}]}})


def hpa(minimum: int | None) -> Resource:
    spec = {"maxReplicas": 10, **({"minReplicas": minimum} if minimum is not None else {})}
    return kit(HPA, "web-app-autoscaler", "webstack:components:WebService", props={"spec": spec})


def identity_policy(*statements, type_: str = "aws:iam/rolePolicy:RolePolicy") -> Resource:
    return Resource(type_, "app-policy", {"role": "app", "policy": json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)})})


def allow(action, resource="arn:aws:s3:::static-123/*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# --- the cases -------------------------------------------------------------------------------
@dataclass
class Case:
    policy: str
    resources: list[Resource]
    stage: Stage = PROD
    expect: tuple[str, ...] = ()  # what the findings say; empty: the resources pass
    id: str = field(default="")


PASSING = [
    Case("s3-public-access-blocked", bucket_with_block(), id="bucket-with-all-four-blocks"),
    Case("s3-public-access-blocked", [Resource(BUCKET, "logs", {}), Resource(
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", "account",
        {b: True for b in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")})],
        id="an-account-wide-block-covers-every-bucket"),
    Case("s3-no-public-grants", [bucket_policy(*KIT_BUCKET_STATEMENTS)], id="the-kit's-oac-bucket-policy"),
    Case("s3-no-public-grants", [Resource(BUCKET, "static", {"bucketPrefix": "static-"})], id="bucket-without-acl"),
    Case("rds-storage-encrypted", [rds()]),
    Case("rds-not-public", [rds()]),
    Case("rds-deletion-protection", [rds()]),
    Case("rds-backups", [rds()]),
    Case("rds-multi-az", [rds()]),
    Case("rds-multi-az", [rds(multiAz=False)], stage=DEV, id="single-az-is-a-dev-relaxation"),
    Case("cloudfront-https-only", [distribution(CUSTOM_CERT, ordered=[
        {"pathPattern": "/media/*", "viewerProtocolPolicy": "https-only"}])]),
    Case("cloudfront-modern-tls", [distribution(CUSTOM_CERT)], id="custom-certificate-tls1.2_2021"),
    Case("cloudfront-modern-tls", [distribution({"cloudfrontDefaultCertificate": True})], stage=DEV,
         id="default-certificate-outside-prod"),
    Case("eks-endpoint-not-public", [eks()], id="public-endpoint-limited-to-egress-ranges"),
    Case("eks-endpoint-not-public", [eks(vpcConfig={"endpointPrivateAccess": True, "endpointPublicAccess": False})],
         id="private-endpoint"),
    Case("eks-secrets-encrypted", [eks()]),
    Case("eks-audit-logs", [eks()]),
    Case("helm-charts-pinned", [helm_release()]),
    *[Case("pods-run-as-non-root", [workload(kind, pod(), api=api)], id=kind)
      for kind, api in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("DaemonSet", "apps/v1"),
                        ("Job", "batch/v1"), ("CronJob", "batch/v1"), ("Pod", "core/v1"))],
    Case("pods-run-as-non-root", [deployment(pod(container(securityContext={
        k: v for k, v in HARDENED_CONTEXT.items() if k != "runAsNonRoot"}), context={"runAsUser": 10001}))],
        id="a-non-zero-uid-suffices"),
    Case("pods-no-privilege-escalation", [deployment(pod(init=[container("init")]))]),
    Case("pods-read-only-root-filesystem", [deployment(pod(init=[container("init")]))]),
    Case("pods-resources-set", [deployment(pod(container(resources={
        "requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}})))],
        id="no-cpu-limit-needed"),
    Case("pods-images-by-digest", [deployment(pod())]),
    Case("pods-images-by-digest", [deployment(pod(container(image="ghcr.io/acme/api:1.0")))], stage=DEV,
         id="a-tag-is-a-dev-relaxation"),
    Case("hpa-min-replicas", [hpa(2)]),
    Case("hpa-min-replicas", [hpa(1)], stage=DEV, id="one-pod-is-a-dev-relaxation"),
    Case("no-public-database-service", [postgres(), service("ClusterIP", {"app.kubernetes.io/name": "web-postgres"},
                                                             5432, 5432)], id="clusterip-database-service"),
    Case("no-public-database-service", [postgres(), service("LoadBalancer", {"app": "web-app"})],
         id="load-balancer-for-the-web-app"),
    Case("iam-no-wildcard-writes", [identity_policy(
        allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
              ["arn:aws:secretsmanager:us-east-1:1:secret:rds!db-1"]),
        allow(["s3:GetObject", "s3:PutObject"]))], id="the-kit's-pod-identity-policies"),
    Case("iam-no-wildcard-writes", [identity_policy(allow(["s3:Get*", "ec2:Describe*"], "*"))],
         id="read-only-wildcards"),
    Case("iam-no-wildcard-writes", [identity_policy(allow("cloudwatch:PutMetricData", "*"))],
         id="a-write-aws-only-authorizes-on-star"),
    Case("iam-no-wildcard-writes", [Resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks", {
        "role": "cluster", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"})],
        id="narrow-managed-policy"),
    Case("stateful-resources-protected", [kit(RDS, "web-db-db", "webstack:components:Database", props=RDS_PROD,
                                              protect=True), Resource(BUCKET, "static", {}, protect=True)],
         id="protected-database-and-bucket"),
    Case("stateful-resources-protected", [postgres("Retain")], id="statefulset-keeping-its-volumes"),
    Case("stateful-resources-protected", [rds()], stage=DEV, id="unprotected-is-a-dev-relaxation"),
]

VIOLATING = [
    Case("s3-public-access-blocked", [Resource(BUCKET, "static", {})],
         expect=("Bucket 'static'", "no BucketPublicAccessBlock covers it"), id="no-block"),
    Case("s3-public-access-blocked", bucket_with_block(restrictPublicBuckets=False),
         expect=("BucketPublicAccessBlock 'static-block'", "restrictPublicBuckets not true"), id="a-switch-off"),
    Case("s3-no-public-grants", [bucket_policy({"Sid": "Public", "Effect": "Allow", "Principal": "*",
                                                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::static-123/*"})],
         expect=("BucketPolicy 'static-policy'", "'Public' allow any principal"), id="public-policy"),
    Case("s3-no-public-grants", [Resource("aws:s3/bucketAcl:BucketAcl", "static-acl",
                                          {"bucket": "static-123", "acl": "public-read"})],
         expect=("BucketAcl 'static-acl'", "'public-read'"), id="public-acl"),
    Case("rds-storage-encrypted", [rds(storageEncrypted=False)], expect=("Instance 'web-db-db'", "not encrypted")),
    Case("rds-not-public", [rds(publiclyAccessible=True)], expect=("publiclyAccessible is true",)),
    Case("rds-deletion-protection", [rds(deletionProtection=False)],
         expect=("deletionProtection is off", "webstack:fastapi.database.deletion_protection")),
    Case("rds-deletion-protection", [rds(deletionProtection=False)], stage=DEV,
         expect=("webstack:fastapi.database.deletion_protection",), id="advisory-in-dev"),
    Case("rds-backups", [rds(backupRetentionPeriod=0)],
         expect=("backups are off", "webstack:fastapi.database.backup_retention_days"), id="no-retention"),
    Case("rds-backups", [rds(skipFinalSnapshot=True)],
         expect=("skipFinalSnapshot is true", "webstack:fastapi.database.final_snapshot"), id="no-final-snapshot"),
    Case("rds-multi-az", [rds(multiAz=False)], expect=("multiAz is off", "webstack:fastapi.database.multi_az")),
    Case("cloudfront-https-only", [distribution(CUSTOM_CERT, protocol="allow-all")],
         expect=("Distribution 'web-static-cdn'", "the default cache behaviour serves plain HTTP"), id="default"),
    Case("cloudfront-https-only", [distribution(CUSTOM_CERT, ordered=[
        {"pathPattern": "/media/*", "viewerProtocolPolicy": "allow-all"}])],
         expect=("cache behaviour '/media/*' serves plain HTTP",), id="ordered-behaviour"),
    Case("cloudfront-modern-tls", [distribution({**CUSTOM_CERT, "minimumProtocolVersion": "TLSv1.1_2016"})],
         expect=("viewers may connect with TLSv1.1_2016", "TLSv1.2_2021"), id="custom-certificate-tls1.1"),
    Case("cloudfront-modern-tls", [distribution({"cloudfrontDefaultCertificate": True})],
         expect=("*.cloudfront.net certificate", "webstack:django.static.domain_name"), id="default-certificate"),
    Case("eks-endpoint-not-public", [eks(vpcConfig={"endpointPublicAccess": True,
                                                    "publicAccessCidrs": ["0.0.0.0/0"]})],
         expect=("Cluster 'web-cluster-eks'", "admits 0.0.0.0/0", "webstack:cluster.endpoint_public_access_cidrs"),
         id="open-to-anywhere"),
    Case("eks-endpoint-not-public", [eks(vpcConfig={"endpointPublicAccess": True})],
         expect=("publicAccessCidrs unset",), id="public-with-eks-default-cidrs"),
    Case("eks-secrets-encrypted", [eks(encryptionConfig=None)], expect=("not envelope-encrypted",)),
    Case("eks-audit-logs", [eks(enabledClusterLogTypes=["api"])], expect=("audit log is off",)),
    Case("helm-charts-pinned", [helm_release(version="88.x")], expect=("not pinned to an exact version",),
         id="a-range"),
    Case("helm-charts-pinned", [helm_release(version=None)], expect=("version: unset",), id="no-version"),
    Case("helm-charts-pinned", [helm_release(repo="http://charts.example.com")], expect=("not HTTPS or OCI",),
         id="plain-http"),
    *[Case("pods-run-as-non-root", [workload(kind, pod(container(securityContext=root_context())), api=api)],
           expect=(f"{kind} 'web-app'", "container 'app': runs as uid 0"), id=kind)
      for kind, api in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("DaemonSet", "apps/v1"),
                        ("Job", "batch/v1"), ("CronJob", "batch/v1"), ("Pod", "core/v1"))],
    Case("pods-run-as-non-root", [deployment(pod(container(securityContext={}), context={}))],
         expect=("may run as root",), id="image-user-decides"),
    Case("pods-no-privilege-escalation", [deployment(pod(init=[container("init", securityContext={
        **HARDENED_CONTEXT, "allowPrivilegeEscalation": True})]))],
         expect=("init container 'init': allowPrivilegeEscalation is not false",), id="init-container"),
    Case("pods-no-privilege-escalation", [deployment(pod(container(securityContext={
        **HARDENED_CONTEXT, "privileged": True})))], expect=("container 'app': is privileged",), id="privileged"),
    Case("pods-read-only-root-filesystem", [deployment(pod(container(securityContext={
        **HARDENED_CONTEXT, "readOnlyRootFilesystem": False})))], expect=("root filesystem is writable",)),
    Case("pods-resources-set", [deployment(pod(container(resources={"limits": {"cpu": "1"}})))],
         expect=("requests.cpu, requests.memory, limits.memory not set",)),
    Case("pods-images-by-digest", [deployment(pod(container(image="ghcr.io/acme/api:1.0")))],
         expect=("image 'ghcr.io/acme/api:1.0' is not pinned by digest", "webstack:app.image"), id="app"),
    Case("pods-images-by-digest", [postgres()],
         expect=("StatefulSet 'web-postgres-statefulset'", "webstack:fastapi.database.local_image"),
         id="in-cluster-postgres"),
    Case("hpa-min-replicas", [hpa(1)],
         expect=("HorizontalPodAutoscaler 'web-app-autoscaler'", "minReplicas is 1",
                 "webstack:fastapi.autoscaling.min_replicas"), id="one"),
    Case("hpa-min-replicas", [hpa(None)], expect=("minReplicas is 1",), id="unset-defaults-to-one"),
    Case("no-public-database-service", [postgres(), service("LoadBalancer", {"app.kubernetes.io/name":
                                                                             "web-postgres"}, 5433, 5432)],
         expect=("Service 'loadbalancer-service'", "selects the pods of database StatefulSet(s) "
                 "'web-postgres-statefulset'"), id="load-balancer-selecting-postgres"),
    Case("no-public-database-service", [service("NodePort", {"app": "db"}, 5432, 5432)],
         expect=("a NodePort Service in front of a database", "port(s) [5432"), id="node-port-5432"),
    Case("iam-no-wildcard-writes", [identity_policy(allow("s3:*"))],
         expect=("RolePolicy 'app-policy'", "write actions by wildcard: s3:*"), id="service-wildcard"),
    Case("iam-no-wildcard-writes", [identity_policy(allow("*", "*"))], expect=("by wildcard: *",), id="star"),
    Case("iam-no-wildcard-writes", [identity_policy(allow("s3:*Object"))], expect=("s3:*Object",),
         id="wildcard-covering-PutObject"),
    Case("iam-no-wildcard-writes", [identity_policy(allow(["s3:PutObject", "s3:GetObject"], "*"))],
         expect=("write actions on every resource ('*'): s3:PutObject",), id="write-on-star"),
    Case("iam-no-wildcard-writes", [Resource("aws:iam/role:Role", "app-role", {"inlinePolicies": [
        {"name": "all", "policy": json.dumps({"Statement": [allow("dynamodb:*", "*")]})}]})],
         expect=("Role 'app-role'", "inline policy 'all'"), id="role-inline-policy"),
    Case("iam-no-wildcard-writes", [Resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", {
        "role": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})],
         expect=("attaches arn:aws:iam::aws:policy/AdministratorAccess",), id="administrator-access"),
    Case("stateful-resources-protected", [rds()],
         expect=("Instance 'web-db-db': holds data but is not protected", "webstack:fastapi.database.protect"),
         id="database"),
    Case("stateful-resources-protected", [kit(BUCKET, "web-static-bucket", "webstack:components:StaticCdn",
                                              stack=DJANGO, props={})],
         expect=("webstack:django.static.protect",), id="static-bucket"),
    Case("stateful-resources-protected", [kit(BUCKET, "web-media-bucket", "webstack:components:MediaBucket",
                                              stack=DJANGO, props={})],
         expect=("webstack:django.media.protect",), id="media-bucket"),
    Case("stateful-resources-protected", [Resource("aws:kms/key:Key", "secrets", {})],
         expect=("Key 'secrets'", "protect=True"), id="kms-key"),
    Case("stateful-resources-protected", [postgres("Delete")],
         expect=("StatefulSet 'web-postgres-statefulset'",), id="statefulset-deleting-its-volumes"),
]


def case_id(case: Case) -> str:
    return f"{case.policy}[{case.id}]" if case.id else case.policy


@pytest.mark.parametrize("case", PASSING, ids=case_id)
def test_a_compliant_resource_passes(case):
    outcome = run(policy_named(case.policy, case.stage), case.resources, case.stage)

    assert outcome.messages() == []


@pytest.mark.parametrize("case", VIOLATING, ids=case_id)
def test_a_violation_names_the_resource_the_problem_and_the_fix(case):
    outcome = run(policy_named(case.policy, case.stage), case.resources, case.stage)

    messages = outcome.messages()
    assert messages, f"{case.policy} found nothing"
    text = "\n".join(messages)
    for expected in case.expect:
        assert expected in text
    for message in messages:
        kind_and_name, _, rest = message.partition(": ")
        assert any(kind_and_name == f"{r.type.rsplit(':', 1)[-1]} '{r.name}'" for r in case.resources), message
        assert ". Fix: " in rest and rest.endswith("."), message
    assert {f.level for f in outcome.findings} == {case.stage.enforcement_level}


def test_every_policy_has_a_passing_and_a_violating_case():
    names = {p.name for p in policies(PROD)}

    assert names == {c.policy for c in PASSING}
    assert names == {c.policy for c in VIOLATING}


@pytest.mark.parametrize("policy", ["rds-multi-az", "pods-images-by-digest", "hpa-min-replicas",
                                    "stateful-resources-protected", "cloudfront-modern-tls"])
def test_a_prod_only_rule_says_it_does_not_apply_to_a_dev_stack(policy):
    resources = [rds(multiAz=False), deployment(pod(container(image="api:1"))), hpa(1),
                 distribution({"cloudfrontDefaultCertificate": True})]

    outcome = run(policy_named(policy, DEV), resources, DEV)

    assert outcome.messages() == []
    assert outcome.not_applicable[policy] == "required in prod only; this stack's webstack:environment is dev"


@pytest.mark.parametrize("environment,level", [("prod", "mandatory"), ("staging", "advisory"), ("dev", "advisory"),
                                               (None, "mandatory"), ("qa", "mandatory")])
def test_enforcement_is_mandatory_unless_the_stack_is_dev_or_staging(environment, level):
    assert Stage(environment).enforcement_level.value == level


def test_a_resource_the_kit_did_not_create_gets_a_fix_without_the_kits_keys():
    plain = Resource(RDS, "orders", {**RDS_PROD, "multiAz": False})

    outcome = run(policy_named("rds-multi-az", PROD), [plain], PROD)

    assert outcome.messages() == ["Instance 'orders': multiAz is off: losing its availability zone takes the "
                                  "database down until it is restored. Fix: set multiAz: true."]
