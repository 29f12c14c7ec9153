"""The GitHub Actions workflows users of the kit adopt (.github/workflows): checked by actionlint and
zizmor, and held to the repo they run in: the stacks they preview and deploy are the example
stacks, the commands they run are the README's and the CLI's, and what they need is documented."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
README = ROOT / "README.md"
ENGINE_DIR = Path(os.environ.get("WEBSTACK_ENGINE_DIR") or Path.home() / ".cache" / "webstack-engine")
ENVIRONMENTS = ("dev", "staging", "prod")
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("WEBSTACK_ENGINE_REQUIRED") == "1"


def _require(tool: Path | None, reason: str) -> Path:
    """The tool's path. Missing, the test skips; under CI (CI=true) or tools/test it fails, since
    tools/test installs both and a skipped check there would pass silently."""
    if tool is None or not tool.is_file():
        if _ci():
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)
    return tool


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(doc: dict[str, Any]):
    """(job id, job, step) for every step of a workflow."""
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def scripts(doc: dict[str, Any]) -> list[str]:
    return [step["run"] for _, _, step in steps(doc) if "run" in step]


def step_with_id(doc: dict[str, Any], step_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [(job, step) for _, job, step in steps(doc) if step.get("id") == step_id]
    assert len(found) == 1, f"one step with id {step_id!r}"
    return found[0]


def both() -> list[dict[str, Any]]:
    return [load(PULL_REQUEST), load(DEPLOY)]


# --- the linters -----------------------------------------------------------------------------

def test_actionlint_reports_no_error_on_the_workflows():
    actionlint = _require(ENGINE_DIR / "bin" / "actionlint",
                          f"{ENGINE_DIR}/bin/actionlint is not built: run tools/build-engine actionlint (tools/test does)")
    # Run from the repo root, actionlint finds .github/workflows itself (and uses shellcheck on the
    # run: scripts when it is on PATH).
    result = subprocess.run([str(actionlint), "-no-color"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_reports_no_finding_on_the_workflows_offline():
    found = shutil.which("zizmor") or shutil.which("zizmor", path=str(ROOT / ".venv-tools" / "bin"))
    zizmor = _require(Path(found) if found else None,
                      "zizmor is installed into .venv-tools by tools/setup (requirements-tools.txt); run ./tools/test")
    result = subprocess.run([str(zizmor), "--offline", "--no-progress", "--color", "never", str(WORKFLOWS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


# --- hardening zizmor's defaults leave to us ---------------------------------------------------

def test_every_action_is_pinned_by_a_full_commit_sha_with_its_release_named():
    for path in (PULL_REQUEST, DEPLOY):
        uses = re.findall(r"uses:\s*(\S+)(.*)", path.read_text())
        assert uses, f"{path.name} uses actions"
        for action, comment in uses:
            # zizmor accepts actions/* by tag by default; a tag can be moved, a commit cannot.
            assert PINNED.match(action), f"{path.name}: {action} is not pinned by a full commit SHA"
            assert re.match(r"\s*# v\d", comment), f"{path.name}: {action} has no `# vX.Y.Z` comment"


def test_each_action_is_pinned_to_one_commit_everywhere():
    pins: dict[str, set[str]] = {}
    for path in (PULL_REQUEST, DEPLOY):
        for action in re.findall(r"uses:\s*(\S+)", path.read_text()):
            name, sha = action.split("@")
            pins.setdefault(name, set()).add(sha)
    assert {name: shas for name, shas in pins.items() if len(shas) > 1} == {}


def test_no_permission_by_default_and_every_job_names_its_own():
    for doc in both():
        assert doc["permissions"] == {}, "top-level `permissions: {}`"
        for job_id, job in doc["jobs"].items():
            assert "permissions" in job, f"job {job_id} declares the permissions it uses"
            assert job["permissions"].get("contents") in (None, "read"), job_id


def test_no_pull_request_target_and_no_persisted_git_credentials():
    for doc in both():
        assert "pull_request_target" not in doc["on"]
        for job_id, _, step in steps(doc):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, job_id


def test_no_expression_is_interpolated_into_a_script():
    for doc in both():
        for script in scripts(doc):
            assert "${{" not in script, f"pass values to scripts through env:, not into the text:\n{script}"


def test_a_fork_pull_request_never_gets_credentials_or_a_token_that_writes():
    doc = load(PULL_REQUEST)
    for job_id, job in doc["jobs"].items():
        text = yaml.safe_dump(job)
        privileged = ("environment" in job or "secrets." in text or job["permissions"].get("id-token") == "write"
                      or "write" in job["permissions"].values())
        if privileged:
            assert SAME_REPOSITORY in str(job.get("if", "")), (
                f"job {job_id} holds credentials or a write token: it must run only for branches of "
                f"this repository ({SAME_REPOSITORY})")
        else:
            assert "if" not in job or SAME_REPOSITORY not in job["if"], f"{job_id} runs for forks too"


def test_the_offline_render_and_its_summary_run_for_every_pull_request():
    doc = load(PULL_REQUEST)
    render = doc["jobs"]["render"]
    assert "if" not in render, "forks get the offline render"
    run = "\n".join(s.get("run", "") for s in render["steps"])
    assert "$GITHUB_STEP_SUMMARY" in run and "-m cli diff" in run


# --- the stacks the workflows run for ------------------------------------------------------------

def expected_environment_stacks() -> list[dict[str, str]]:
    """From the stack files themselves: every aws stack (Pulumi.yaml's default target) with its environment."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    default_target = project["config"]["target"]["default"]
    out = []
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        config = yaml.safe_load(path.read_text())["config"]
        if config.get("webstack:target", default_target) == "aws":
            out.append({"stack": path.name[len("Pulumi."):-len(".yaml")],
                        "environment": config["webstack:environment"]})
    return sorted(out, key=lambda s: s["stack"])


def listed_stacks(doc: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Runs the workflow's own `stacks` step here, as the runner would, and reads what it outputs."""
    _, step = step_with_id(doc, "stacks")
    output = tmp_path / "github_output"
    output.touch()
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    return {k: json.loads(v) for k, v in (line.split("=", 1) for line in output.read_text().splitlines())}


def test_the_stacks_previewed_and_deployed_are_the_aws_example_stacks(tmp_path):
    expected = expected_environment_stacks()
    assert {s["environment"] for s in expected} >= {"dev", "prod"}, "the examples have dev and prod stacks"
    for doc in both():
        listed = listed_stacks(doc, tmp_path)
        assert sorted(listed["stacks"], key=lambda s: s["stack"]) == expected
        for environment in ENVIRONMENTS:
            assert sorted(listed[environment]) == sorted(s["stack"] for s in expected if s["environment"] == environment)


def test_both_workflows_list_the_stacks_with_the_same_script():
    pr_job, pr_step = step_with_id(load(PULL_REQUEST), "stacks")
    deploy_job, deploy_step = step_with_id(load(DEPLOY), "stacks")
    assert pr_step["run"] == deploy_step["run"]


def test_each_environment_stack_gets_a_preview_with_the_policy_pack(tmp_path):
    jobs = load(PULL_REQUEST)["jobs"]
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.render.outputs.stacks) }}"
    assert jobs["render"]["outputs"]["stacks"] == "${{ steps.stacks.outputs.stacks }}"
    assert preview["environment"] == "${{ matrix.environment }}-preview"
    assert preview["env"]["STACK"] == "${{ matrix.stack }}"
    run = "\n".join(s.get("run", "") for s in preview["steps"])
    assert re.search(r"pulumi preview --stack \S*\$STACK\"? --diff --policy-pack policies", run), run
    comment = jobs["comment"]
    assert comment["needs"] == "preview" and comment["permissions"] == {"pull-requests": "write"}
    comment_run = comment["steps"][-1]["run"]
    # One comment, edited in place: found by its marker, PATCHed when found.
    assert "startswith(env.MARKER)" in comment_run and "--method PATCH" in comment_run
    assert comment["steps"][-1]["env"]["MARKER"].startswith("<!--")


def test_deploys_go_dev_then_staging_then_prod_one_stack_at_a_time():
    jobs = load(DEPLOY)["jobs"]
    assert load(DEPLOY)["on"] == {"push": {"branches": ["main"]}}
    previous: list[str] = ["render"]
    for environment in ENVIRONMENTS:
        job = jobs[environment]
        assert job["environment"] == environment
        needs = [job["needs"]] if isinstance(job["needs"], str) else job["needs"]
        assert needs == previous, f"{environment} waits for {previous}"
        assert job["strategy"]["matrix"]["stack"] == f"${{{{ fromJSON(needs.render.outputs.{environment}) }}}}"
        assert jobs["render"]["outputs"][environment] == f"${{{{ steps.stacks.outputs.{environment} }}}}"
        assert job["concurrency"] == {"group": "deploy-${{ matrix.stack }}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        run = "\n".join(s.get("run", "") for s in job["steps"])
        assert re.search(r"pulumi up --stack \S*\$STACK\"? --yes .*--policy-pack policies", run), run
        assert "-m cli verify \"$STACK\"" in run, "a smoke check after each deploy"
        previous = [*previous, environment]


def test_the_three_deploy_jobs_run_the_same_steps():
    jobs = load(DEPLOY)["jobs"]
    dev = jobs["dev"]
    for environment in ("staging", "prod"):
        job = jobs[environment]
        assert job["steps"] == dev["steps"], f"{environment} drifted from dev"
        assert job["env"] == dev["env"] and job["permissions"] == dev["permissions"]


def test_the_policy_pack_the_workflows_apply_is_this_repo_s():
    for doc in both():
        for script in scripts(doc):
            for pack in re.findall(r"--policy-pack (\S+)", script):
                assert (ROOT / pack / "PulumiPolicy.yaml").is_file(), f"--policy-pack {pack}: no PulumiPolicy.yaml there"


def test_the_pulumi_cli_installed_is_the_release_of_the_sdk_pin():
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    for doc in both():
        assert doc["env"]["PULUMI_VERSION"] == sdk
        installs = [s for _, _, s in steps(doc) if s.get("uses", "").startswith("pulumi/actions@")]
        assert installs and all(s["with"] == {"pulumi-version": "${{ env.PULUMI_VERSION }}"} for s in installs)


# --- the commands: the README's and the CLI's ------------------------------------------------------

def readme_code_blocks() -> list[str]:
    return re.findall(r"^```(?:sh|console)?\n(.*?)^```", README.read_text(), re.S | re.M)


def test_the_tests_job_runs_the_readme_test_command_under_CI_true():
    test_command = next(b.strip() for b in readme_code_blocks() if b.strip().startswith("./tools/"))
    job = load(PULL_REQUEST)["jobs"]["tests"]
    assert job["env"]["CI"] == "true"
    assert [s["run"] for s in job["steps"] if "run" in s][-1].strip() == test_command
    # .ci/run, this repo's CI, runs the same command.
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_tests_job_installs_the_packages_tools_setup_installs_as_root():
    setup = (ROOT / "tools" / "setup").read_text()
    wanted = set(re.findall(r"missing\+=\((\w+)\)", setup))
    job = load(PULL_REQUEST)["jobs"]["tests"]
    lines = [line for s in job["steps"] for line in s.get("run", "").splitlines() if "apt-get install" in line]
    assert len(lines) == 1
    packages = {word for word in lines[0].split("apt-get install", 1)[1].split() if not word.startswith("-")}
    assert wanted and packages == wanted


def test_the_render_jobs_install_and_render_as_the_readme_says():
    quickstart = next(b.strip() for b in readme_code_blocks() if "-m cli render" in b and "venv" in b)
    install = quickstart.split(" && .venv/bin/python")[0]  # python3 -m venv .venv && .venv/bin/pip install ...
    assert "`python -m cli render --all` renders every example stack" in README.read_text()
    for doc in both():
        render_runs = [s["run"] for s in doc["jobs"]["render"]["steps"] if "-m cli render" in s.get("run", "")]
        assert render_runs
        for run in render_runs:
            assert install in run
            assert re.search(r"\.venv/bin/python -m cli render --all --out \S+", run)


def test_the_summary_compares_the_two_renders_the_job_wrote():
    render = load(PULL_REQUEST)["jobs"]["render"]
    outs = {s["working-directory"]: re.search(r"--out ([^\s;]+)", s["run"]).group(1)
            for s in render["steps"] if "-m cli render" in s.get("run", "")}
    assert set(outs) == {"base", "head"}, "the base branch and the pull request, each checked out in its folder"
    diff = next(s for s in render["steps"] if "-m cli diff" in s.get("run", ""))
    assert diff["working-directory"] == "head", "the pull request's own diff command"
    assert re.search(rf"-m cli diff {re.escape(outs['base'])} {re.escape(outs['head'])} --markdown", diff["run"])
    # Both renders are uploaded: the folder holding them, relative to the workspace.
    written = [posixpath.normpath(f"{where}/{out}") for where, out in outs.items()]
    upload = next(s for s in render["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert posixpath.normpath(upload["with"]["path"]) == posixpath.commonpath(written)


def cli_invocations() -> list[tuple[str, list[str]]]:
    """(subcommand, its --options) of every `python -m cli ...` the workflows run."""
    found = []
    for doc in both():
        for script in scripts(doc):
            for sub, rest in re.findall(r"python3? -m cli ([\w-]+)([^\n|>;&]*)", script):
                found.append((sub, re.findall(r"(--[\w-]+)", rest)))
    return found


def test_every_cli_command_the_workflows_run_exists_with_its_options():
    invocations = cli_invocations()
    assert {sub for sub, _ in invocations} >= {"render", "diff", "verify"}
    for sub in sorted({sub for sub, _ in invocations}):
        result = subprocess.run([sys.executable, "-m", "cli", sub, "--help"], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"python -m cli {sub}: {result.stderr}"
        for option in {o for s, opts in invocations if s == sub for o in opts}:
            assert option in result.stdout, f"python -m cli {sub} has no {option}"


def test_every_pull_request_lints_the_migrations_it_changes_in_both_reference_apps():
    from cli.render import load_stack_file

    doc = load(PULL_REQUEST)
    job = doc["jobs"]["migrations"]
    assert "if" not in job, "forks get the migration lint: it needs no credentials"
    assert job["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, "--since needs the base branch's history (git merge-base)"
    install = "\n".join(s.get("run", "") for s in job["steps"])
    # The kit's pins: squawk from requirements-dev.txt, django-migration-linter from the Django
    # app's requirements-dev.txt, each app's own packages; PostgreSQL for the scratch server.
    assert "$(grep '^squawk-cli==' requirements-dev.txt)" in install
    assert "-r stacks/django/app/requirements-dev.txt" in install
    assert "-r stacks/fastapi/app/requirements.txt" in install
    assert re.search(r"apt-get install .*\bpostgresql\b", install)
    assert "django-migration-linter==" in (ROOT / "stacks" / "django" / "app" / "requirements-dev.txt").read_text()
    lints = [s for s in job["steps"] if "-m cli lint-migrations" in s.get("run", "")]
    apps = {}
    for step in lints:
        found = re.search(r"\.venv/bin/python -m cli lint-migrations (\S+) --app-dir (\S+) --since \"\$BASE_SHA\"$",
                          step["run"].strip())
        assert found, step["run"]
        stack, app_dir = found.groups()
        apps[app_dir] = load_stack_file(stack).config["webstack:framework"]
    assert apps == {"stacks/django/app": "django", "stacks/fastapi/app": "fastapi"}
    # A finding in the first app must not hide the second's.
    assert all(step.get("if") == "${{ !cancelled() }}" for step in lints[1:])


# --- what the README tells an adopter ------------------------------------------------------------

def cicd_section() -> str:
    text = README.read_text()
    assert "\n## CI/CD\n" in text, "README.md has a '## CI/CD' section"
    return text.split("\n## CI/CD\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_documents_every_secret_and_variable_the_workflows_read():
    section = cicd_section()
    names = set()
    for path in (PULL_REQUEST, DEPLOY):
        names |= set(re.findall(r"\b(?:secrets|vars)\.(\w+)", path.read_text()))
    assert names >= {"AWS_ROLE_ARN", "PULUMI_ACCESS_TOKEN"}
    assert not {n for n in names if f"`{n}`" not in section}, "README '## CI/CD': document each in its table"


def test_the_readme_names_every_github_environment_and_the_stacks_deployed():
    section = cicd_section()
    for environment in ENVIRONMENTS:
        assert f"`{environment}`" in section and f"`{environment}-preview`" in section
    for stack in expected_environment_stacks():
        assert f"`{stack['stack']}`" in section


def test_the_readme_trust_policy_admits_one_environment_through_github_oidc():
    section = cicd_section()
    policy = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    (statement,) = policy["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    condition = statement["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    # The sub of a job that names an environment: exactly one environment, no wildcard.
    assert re.fullmatch(r"repo:[\w.-]+/[\w.-]+:environment:(dev|staging|prod)",
                        condition["token.actions.githubusercontent.com:sub"])
