"""ReleaseJob: runs once per release, gates the rollout, and survives the Job traps."""

import pulumi

from components.release_job import ReleaseJob, ReleaseJobArgs, job_name
from components.web_service import WebService, WebServiceArgs

IMAGE = "registry.example.com/shop@sha256:" + "a" * 64
NEXT_IMAGE = "registry.example.com/shop@sha256:" + "c" * 64
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
JOB = "kubernetes:batch/v1:Job"


def migrate(image=IMAGE, command=MIGRATE, **overrides):
    kwargs = {k: overrides.pop(k) for k in ("secrets", "service_account_name") if k in overrides}
    return lambda: ReleaseJob("migrate", ReleaseJobArgs(image=image, command=command, **overrides),
                              namespace="shop", **kwargs)


def job_of(monitor):
    return monitor.one(JOB)


def test_the_job_name_derives_from_image_and_command_so_an_unchanged_release_runs_nothing(run):
    name = job_of(run(migrate())).inputs["metadata"]["name"]
    assert name == job_name("migrate", IMAGE, MIGRATE)
    assert name.startswith("migrate-") and len(name) == len("migrate-") + 8
    assert job_of(run(migrate())).inputs["metadata"]["name"] == name
    assert job_of(run(migrate(image=NEXT_IMAGE))).inputs["metadata"]["name"] != name
    assert job_of(run(migrate(command=["python", "manage.py", "collectstatic"]))).inputs["metadata"]["name"] != name


def test_a_changed_job_is_replaced_never_patched_and_the_old_one_goes_first(run):
    job = job_of(run(migrate()))
    assert job.replace_on_changes == ["spec"]
    assert job.delete_before_replace is True


def test_a_job_that_failed_last_time_is_replaced_and_run_again_on_the_next_up(run):
    annotations = job_of(run(migrate())).inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/replaceUnready"] == "true"


def test_pulumi_waits_for_the_job_and_the_cluster_never_deletes_it_behind_pulumis_back(run):
    job = job_of(run(migrate())).inputs
    assert "pulumi.com/skipAwait" not in job["metadata"]["annotations"]
    assert "ttlSecondsAfterFinished" not in job["spec"]


def test_the_job_runs_once_with_a_retry_budget_and_a_deadline(run):
    spec = job_of(run(migrate(backoff_limit=2, active_deadline_seconds=900))).inputs["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["completions"] == 1 and spec["parallelism"] == 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_the_job_pod_has_the_same_restricted_security_context_as_the_web_pods(run):
    def program():
        ReleaseJob("migrate", ReleaseJobArgs(image=IMAGE, command=MIGRATE), namespace="shop")
        WebService("web", WebServiceArgs(image=IMAGE), namespace="shop")

    monitor = run(program)
    job_pod = job_of(monitor).inputs["spec"]["template"]["spec"]
    web_pod = monitor.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    assert job_pod["securityContext"] == web_pod["securityContext"]
    assert job_pod["containers"][0]["securityContext"] == web_pod["containers"][0]["securityContext"]
    assert job_pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert job_pod["automountServiceAccountToken"] is False
    assert {"name": "release-writable-0", "mountPath": "/tmp"} in job_pod["containers"][0]["volumeMounts"]


def test_the_job_has_requests_and_limits_and_runs_the_command_given(run):
    container = job_of(run(migrate())).inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == MIGRATE
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_secrets_reach_the_job_as_files_from_a_secret_kept_secret(run):
    monitor = run(migrate(secrets={"DATABASE_URL": pulumi.Output.secret("postgres://u:p@db/shop")}))
    assert monitor.one("kubernetes:core/v1:Secret").inputs["stringData"] == "[secret]"
    container = job_of(monitor).inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == []
    assert {"name": "release-secrets", "mountPath": "/var/run/secrets/app", "readOnly": True} \
        in container["volumeMounts"]


def test_a_job_needing_aws_access_runs_as_the_service_account_it_is_given(run):
    pod = job_of(run(migrate(service_account_name="web"))).inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "web"
    assert pod["automountServiceAccountToken"] is False


def test_the_completed_output_is_the_job_name_once_the_job_has_run(run):
    monitor = run(migrate())
    component = monitor.one("webstack:components:ReleaseJob")
    assert component.outputs["completed"] == job_of(monitor).inputs["metadata"]["name"]
    assert job_of(monitor).parent == component.urn


def test_a_deployment_given_the_job_rolls_out_only_after_it(run):
    def program():
        job = ReleaseJob("migrate", ReleaseJobArgs(image=IMAGE, command=MIGRATE), namespace="shop")
        static = ReleaseJob("collectstatic", ReleaseJobArgs(image=IMAGE, command=["collectstatic"]),
                            namespace="shop")
        WebService("web", WebServiceArgs(image=IMAGE), namespace="shop", depends_on=[job, static])

    monitor = run(program)
    deployment = monitor.one("kubernetes:apps/v1:Deployment")
    jobs = monitor.all(JOB)
    assert len(jobs) == 2
    for job in jobs:
        assert job.urn in deployment.dependencies, job.name


def test_the_job_manifest_passes_the_strict_kubernetes_1_34_schema(run):
    import kubernetes_validate

    monitor = run(migrate(secrets={"DATABASE_URL": "postgres://"}, service_account_name="web"))
    job = job_of(monitor)
    kubernetes_validate.validate({**job.inputs, "metadata": {**job.inputs["metadata"]}}, "1.34.0", strict=True)
