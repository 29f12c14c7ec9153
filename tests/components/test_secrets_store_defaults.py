"""SecretsManagerEnv: the RDS-managed password reaches the app's environment through the Secrets Store
CSI driver, read with the pod's own Pod Identity, and no container starts without it."""

import json

import pulumi

from components.cluster import Cluster, CreateClusterArgs, KubeconfigClusterArgs
from components.secrets_store import (SecretsManagerEnv, SecretsManagerEnvArgs, jmes_path, objects_parameter,
                                      pod_env)

SPC = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"
KEYS = {"PGPASSWORD": "password", "DATABASE_PASSWORD": "password", "PGUSER": "username"}
ARGS = SecretsManagerEnvArgs(keys=KEYS, region="us-east-1")


def env_program(store: list, args=ARGS, **kwargs):
    def program():
        store.append(SecretsManagerEnv("web-db", args, namespace="web", secret_arn=SECRET_ARN, **kwargs))
    return program


def spc_of(run, **kwargs):
    store: list = []
    monitor = run(env_program(store, **kwargs))
    return monitor, monitor.one(SPC), store[0]


def test_the_provider_class_reads_the_secret_with_the_pods_pod_identity(run):
    _, spc, _ = spc_of(run)

    assert spc.inputs["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
    assert spc.inputs["metadata"]["namespace"] == "web"
    spec = spc.inputs["spec"]
    assert spec["provider"] == "aws"
    assert spec["parameters"]["usePodIdentity"] == "true"
    assert spec["parameters"]["region"] == "us-east-1"


def test_objects_name_the_secret_by_arn_and_pick_each_variables_json_key(run):
    _, spc, _ = spc_of(run)

    (obj,) = json.loads(spc.inputs["spec"]["parameters"]["objects"])
    assert obj["objectName"] == SECRET_ARN
    assert obj["objectType"] == "secretsmanager"
    assert {e["objectAlias"]: e["path"] for e in obj["jmesPath"]} == KEYS
    # The whole secret's file never takes the name of a variable's file.
    assert obj["objectAlias"] not in KEYS


def test_the_synced_secret_has_one_key_per_env_var(run):
    _, spc, env = spc_of(run)

    (synced,) = spc.inputs["spec"]["secretObjects"]
    assert synced["secretName"] == env.secret_name == "web-db-env"
    assert synced["type"] == "Opaque"
    assert sorted((d["objectName"], d["key"]) for d in synced["data"]) == sorted((k, k) for k in KEYS)


def test_volume_mount_and_env_go_together_into_the_pod(run):
    _, spc, env = spc_of(run)

    assert env.volume == {"name": "web-db", "csi": {
        "driver": "secrets-store.csi.k8s.io", "readOnly": True,
        "volumeAttributes": {"secretProviderClass": spc.inputs["metadata"]["name"]}}}
    assert env.mount == {"name": env.volume["name"], "mountPath": "/var/run/secrets/database", "readOnly": True}
    assert [e["name"] for e in env.env] == sorted(KEYS)
    for entry in env.env:
        assert entry["valueFrom"]["secretKeyRef"] == {"name": "web-db-env", "key": entry["name"], "optional": False}


def test_the_mount_path_can_be_moved(run):
    _, _, env = spc_of(run, args=SecretsManagerEnvArgs(keys=KEYS, region="us-east-1", mount_path="/etc/db"))

    assert env.mount["mountPath"] == "/etc/db"


def test_the_provider_class_waits_for_the_add_on_that_installs_its_crd(run):
    def program():
        cluster = Cluster("eks", CreateClusterArgs(deploy_from_vpc=True), subnet_ids=["subnet-0aaa11111"])
        SecretsManagerEnv("web-db", ARGS, namespace="web", secret_arn=SECRET_ARN,
                          depends_on=[cluster.secrets_store_addon],
                          opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}))

    monitor = run(program)

    assert monitor.one("aws:eks/addon:Addon", "eks-secrets-store").urn in monitor.one(SPC).dependencies


def test_a_cluster_the_kit_did_not_create_has_no_add_on_to_wait_for(run):
    def program():
        cluster = Cluster("eks", KubeconfigClusterArgs(mode="kubeconfig"),
                          kubeconfig=pulumi.Output.secret('{"kind": "Config"}'))
        SecretsManagerEnv("web-db", ARGS, namespace="web", secret_arn=SECRET_ARN,
                          depends_on=[cluster.secrets_store_addon])

    assert run(program).one(SPC).dependencies == []


def test_a_json_key_that_is_not_an_identifier_is_quoted_for_jmespath():
    assert jmes_path("password") == "password"
    assert jmes_path("db-password") == '"db-password"'
    (obj,) = json.loads(objects_parameter(SECRET_ARN, {"DB_PASSWORD": "db-password"}))
    assert obj["jmesPath"] == [{"path": '"db-password"', "objectAlias": "DB_PASSWORD"}]


def test_env_entries_are_never_optional():
    assert all(e["valueFrom"]["secretKeyRef"]["optional"] is False for e in pod_env(KEYS, "s"))
