"""The migration guard in the stacks, under mocks: each framework's migrate Job runs its command
under the guard (script from a ConfigMap, PostgreSQL timeouts, lock retries within the Job's
deadline), other release steps do not, and a guard the deadline cannot hold is refused."""

from __future__ import annotations

import pytest
from example_runs import stack
from test_fastapi_stack import run_with

from components.migration_guard import (MOUNT_PATH, SCRIPT_FILE, SCRIPT_NAME, STARTUP_SECONDS, MigrationGuardArgs,
                                        guard_files)
from components.release_job import PULUMI_WAIT_MARGIN_SECONDS, ReleaseJob, ReleaseJobArgs
from stacks.settings import MigrationSettings, ReleaseStep

JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
IMAGE = "registry.example.com/shop@sha256:" + "a" * 64
ALEMBIC = ["alembic", "upgrade", "head"]
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
DEFAULT_GUARD = ["python", f"{MOUNT_PATH}/{SCRIPT_NAME}", "--lock-timeout", "5", "--statement-timeout", "60",
                 "--retries", "5", "--backoff", "5", "--max-backoff", "60", "--budget", "540", "--"]


def jobs(run) -> dict[str, dict]:
    """Job manifests by release step (the Job's name without its hash: web-migrate, ...)."""
    return {j.inputs["metadata"]["name"].rsplit("-", 1)[0]: j.inputs for j in run.monitor.all(JOB)}


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def guarded(job: dict) -> list[str] | None:
    """The command the guard wraps, or None when the Job runs unguarded."""
    command = container(job)["command"]
    return command[command.index("--") + 1:] if command[1:2] == [f"{MOUNT_PATH}/{SCRIPT_NAME}"] else None


# --- the kit's own migrate steps ------------------------------------------------------------

@pytest.mark.parametrize("name,command", [("fastapi-dev", ALEMBIC), ("fastapi-prod", ALEMBIC),
                                          ("fastapi-local", ALEMBIC), ("django-dev", MIGRATE),
                                          ("django-prod", MIGRATE), ("django-local", MIGRATE)])
def test_each_frameworks_migrate_job_runs_its_command_under_the_guard_with_the_defaults(name, command):
    job = jobs(stack(name))["web-migrate"]
    assert container(job)["command"] == DEFAULT_GUARD + command


@pytest.mark.parametrize("name", ["fastapi-local", "django-prod"])
def test_the_guard_script_is_mounted_read_only_from_an_immutable_config_map_of_its_own(name):
    run = stack(name)
    job = jobs(run)["web-migrate"]
    pod = job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert {"name": volume["name"], "mountPath": MOUNT_PATH, "readOnly": True} in container(job)["volumeMounts"]
    config_map = next(c for c in run.monitor.all(CONFIG_MAP) if c.inputs["metadata"]["name"] ==
                      volume["configMap"]["name"])
    assert config_map.inputs["data"] == {SCRIPT_NAME: SCRIPT_FILE.read_text()}
    assert config_map.inputs["immutable"] is True
    assert config_map.inputs["metadata"]["name"].startswith("web-migrate-guard-")


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_the_guard_does_the_retrying_within_the_jobs_deadline_and_says_why_it_failed(name):
    job = jobs(stack(name))["web-migrate"]
    spec = job["spec"]
    assert spec["backoffLimit"] == 0, "a second pod would start the guard's retries over, past the deadline"
    assert spec["activeDeadlineSeconds"] == 600
    # A pod evicted by a drain did not fail: the Job starts another.
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_collectstatic_is_no_migration_and_runs_unguarded():
    job = jobs(stack("django-prod"))["web-collectstatic"]
    assert container(job)["command"] == ["python", "manage.py", "collectstatic", "--noinput"]
    assert job["spec"]["backoffLimit"] == 1 and "podFailurePolicy" not in job["spec"]
    assert not any(m["mountPath"] == MOUNT_PATH for m in container(job)["volumeMounts"])


def test_the_migrations_section_sets_the_guard_and_the_deadline():
    run = run_with("fastapi-local", migrations={"lock_timeout_seconds": 2, "statement_timeout_seconds": 300,
                                                "lock_retries": 3, "backoff_seconds": 10, "max_backoff_seconds": 20,
                                                "job_deadline_seconds": 900, "python": "/app/.venv/bin/python"})
    job = jobs(run)["web-migrate"]
    assert container(job)["command"] == [
        "/app/.venv/bin/python", f"{MOUNT_PATH}/{SCRIPT_NAME}", "--lock-timeout", "2", "--statement-timeout", "300",
        "--retries", "3", "--backoff", "10", "--max-backoff", "20", "--budget", str(900 - STARTUP_SECONDS),
        "--", *ALEMBIC]
    assert job["spec"]["activeDeadlineSeconds"] == 900


def test_an_unchanged_release_keeps_its_job_name_and_a_changed_guard_makes_a_new_one():
    name = jobs(stack("fastapi-local"))["web-migrate"]["metadata"]["name"]
    assert jobs(run_with("fastapi-local", migrations={}))["web-migrate"]["metadata"]["name"] == name
    changed = run_with("fastapi-local", migrations={"lock_timeout_seconds": 3})
    assert jobs(changed)["web-migrate"]["metadata"]["name"] != name


# --- user release steps -------------------------------------------------------------------------

def test_user_release_steps_that_migrate_are_guarded_and_the_others_are_not():
    run = run_with("fastapi-local", app={"image": "ghcr.io/acme/orders-api:0.4.1", "release": [
        {"command": ["/app/.venv/bin/alembic", "-c", "alembic.ini", "upgrade", "head"]},
        {"command": ["sh", "scripts/prestart.sh"], "migration": True},
        {"command": ["python", "seed.py"]},
        {"command": ["python", "manage.py", "migrate"], "migration": False}]})
    steps = jobs(run)
    assert guarded(steps["web-release-1"]) == ["/app/.venv/bin/alembic", "-c", "alembic.ini", "upgrade", "head"]
    assert guarded(steps["web-release-2"]) == ["sh", "scripts/prestart.sh"]
    assert guarded(steps["web-release-3"]) is None and steps["web-release-3"]["spec"]["backoffLimit"] == 1
    assert guarded(steps["web-release-4"]) is None


@pytest.mark.parametrize("command,migrates", [
    (["alembic", "upgrade", "head"], True),
    (["/venv/bin/alembic", "-x", "tenant=a", "upgrade", "+1"], True),
    (["python", "manage.py", "migrate", "--noinput"], True),
    (["python", "/app/manage.py", "migrate", "shop", "0003"], True),
    (["django-admin", "migrate"], True),
    (["alembic", "downgrade", "-1"], False),
    (["python", "manage.py", "collectstatic"], False),
    (["sh", "scripts/prestart.sh"], False),
    (["migrate", "upgrade"], False),
])
def test_a_step_is_a_migration_when_its_command_runs_alembic_upgrade_or_django_migrate(command, migrates):
    assert ReleaseStep(command=command).is_migration is migrates
    assert ReleaseStep(command=command, migration=not migrates).is_migration is not migrates


# --- the arithmetic ---------------------------------------------------------------------------

def test_the_defaults_fit_the_documented_arithmetic():
    s = MigrationSettings()
    assert s.waits() == [5, 10, 20, 40, 60]
    # 6 attempts x 5 s + the waits + a full statement + the pod's start.
    assert s.needed_seconds() == 6 * 5 + 135 + 60 + STARTUP_SECONDS == 285
    assert s.needed_seconds() <= s.job_deadline_seconds == 600
    assert s.job_deadline_seconds + PULUMI_WAIT_MARGIN_SECONDS == 900  # pulumi up's wait for the Job
    assert STARTUP_SECONDS < PULUMI_WAIT_MARGIN_SECONDS


def test_the_component_refuses_a_guard_its_deadline_cannot_hold():
    guard = MigrationGuardArgs(lock_retries=10, lock_timeout_seconds=30)
    with pytest.raises(ValueError, match="active_deadline_seconds: 600 s cannot hold the migration's retries: "
                                         "11 attempts"):
        ReleaseJobArgs(image=IMAGE, command=MIGRATE, migration_guard=guard)
    assert ReleaseJobArgs(image=IMAGE, command=MIGRATE, migration_guard=guard,
                          active_deadline_seconds=guard.needed_seconds()).pod_retries() == 0


def test_the_component_refuses_pod_retries_on_top_of_the_guards():
    with pytest.raises(ValueError, match="backoff_limit: 2 with migration_guard, which retries lock timeouts itself"):
        ReleaseJobArgs(image=IMAGE, command=MIGRATE, migration_guard=MigrationGuardArgs(), backoff_limit=2)


def test_the_component_refuses_a_backoff_cap_below_the_first_wait():
    with pytest.raises(ValueError, match="max_backoff_seconds: 1 is below backoff_seconds"):
        MigrationGuardArgs(backoff_seconds=5, max_backoff_seconds=1)


def test_a_release_job_component_given_a_guard_wraps_its_command(run):
    monitor = run(lambda: ReleaseJob("migrate", ReleaseJobArgs(image=IMAGE, command=MIGRATE,
                                                               migration_guard=MigrationGuardArgs()),
                                     namespace="shop"))
    job = monitor.one(JOB).inputs
    assert container(job)["command"] == DEFAULT_GUARD + MIGRATE
    assert monitor.one(CONFIG_MAP).inputs["data"] == guard_files()


def test_the_guarded_job_passes_the_strict_kubernetes_1_34_schema(run):
    import kubernetes_validate

    monitor = run(lambda: ReleaseJob("migrate", ReleaseJobArgs(image=IMAGE, command=MIGRATE,
                                                               migration_guard=MigrationGuardArgs()),
                                     namespace="shop"))
    for reg in (monitor.one(JOB), monitor.one(CONFIG_MAP)):
        kubernetes_validate.validate(dict(reg.inputs), "1.34.0", strict=True)
