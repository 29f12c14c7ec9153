"""Bad stack config: each gets one precise line naming the key, and nothing is created."""

from __future__ import annotations

import pytest

from stacks.config import load_settings
from stacks.errors import ConfigError

OK_APP = {"image": "ghcr.io/acme/api:1.0.0"}


# Where `pulumi up` runs from: the created cluster's API must be reachable from there.
RUNNER = {"endpoint_public_access_cidrs": ["203.0.113.0/24"]}


def stack(**overrides):
    base = {"framework": "fastapi", "environment": "dev", "app": dict(OK_APP), "cluster": RUNNER}
    base.update(overrides)
    return base


# (case id, config, secret top-level keys, expected key, expected hint)
BAD = [
    ("framework missing", {"environment": "dev", "app": OK_APP}, set(),
     "webstack:framework:", "must be one of 'fastapi', 'django' but not set"),
    ("framework unknown", stack(framework="flask"), set(),
     "webstack:framework:", "got 'flask'"),
    ("environment missing", {"framework": "fastapi", "app": OK_APP}, set(),
     "webstack:environment:", "required but not set"),
    ("environment typo", stack(environment="production"), set(),
     "webstack:environment:", "must be one of 'dev', 'staging' or 'prod', got 'production'"),
    ("target unknown", stack(target="gcp"), set(),
     "webstack:target:", "must be one of 'aws' or 'local', got 'gcp'"),
    ("unknown top-level key, near miss", stack(obsevability={}), set(),
     "webstack:obsevability:", "did you mean 'observability'?"),
    ("unknown top-level key, no near miss", stack(tier="gold"), set(),
     "webstack:tier:", "unknown key; remove it"),
    ("unknown nested key, near miss", stack(app={**OK_APP, "prot": 8080}), set(),
     "webstack:app.prot:", "did you mean 'port'?"),
    ("django section on a fastapi stack", stack(django={}), set(),
     "webstack:django:", "configures framework 'django', but webstack:framework is 'fastapi'"),
    ("fastapi section on a django stack", stack(framework="django", fastapi={}), set(),
     "webstack:fastapi:", "configures framework 'fastapi', but webstack:framework is 'django'"),
    ("app missing", {"framework": "django", "environment": "dev"}, set(),
     "webstack:app:", "required but not set"),
    ("image missing", stack(app={"port": 8000}), set(),
     "webstack:app.image:", "pulumi config set --path 'webstack:app.image'"),
    ("image empty", stack(app={"image": ""}), set(),
     "webstack:app.image:", "'' is not an image reference"),
    ("port not a number", stack(app={**OK_APP, "port": "http"}), set(),
     "webstack:app.port:", "must be a whole number, got 'http'"),
    ("port privileged", stack(app={**OK_APP, "port": 80}), set(),
     "webstack:app.port:", "must be 1024..65535, got 80"),
    ("port too large", stack(app={**OK_APP, "port": 70000}), set(),
     "webstack:app.port:", "must be 1024..65535, got 70000"),
    ("protect not a boolean", stack(framework="django", django={"database": {"protect": "sometimes"}}), set(),
     "webstack:django.database.protect:", "must be true or false, got 'sometimes'"),
    ("min replicas above max", stack(fastapi={"autoscaling": {"min_replicas": 5, "max_replicas": 3}}), set(),
     "webstack:fastapi.autoscaling:", "min_replicas (5) is above max_replicas (3)"),
    ("memory limit below request", stack(app={**OK_APP, "resources": {"memory_request": "512Mi",
                                                                     "memory_limit": "256Mi"}}), set(),
     "webstack:app.resources:", "memory_limit (256Mi) is below memory_request (512Mi)"),
    ("probe path not a path", stack(app={**OK_APP, "health": {"readiness_path": "readyz"}}), set(),
     "webstack:app.health.readiness_path:", "'readyz' is not a URL path starting with '/'"),
    ("network on a local stack", stack(target="local", cluster={"mode": "context"}, network={}), set(),
     "webstack:network:", "target local creates no AWS network"),
    ("django on a platform cluster with a new VPC",
     stack(framework="django", cluster={"mode": "stack_reference", "stack": "a/b/c",
                                        "cluster_security_group_id": "sg-0a1b2c3d4e5f60718"}), set(),
     "webstack:network.mode:", "must live in that cluster's VPC"),
    ("app is not an object", stack(app="ghcr.io/acme/api:1"), set(),
     "webstack:app:", "must be an object"),
    ("env var name invalid", stack(app={**OK_APP, "env": {"1BAD": "x"}}), set(),
     "webstack:app.env.1BAD:", "'1BAD' is not an environment variable name"),
    ("credential in plain env", stack(app={**OK_APP, "env": {"STRIPE_API_KEY": "sk_live_x"}}), set(),
     "webstack:app.env.STRIPE_API_KEY:",
     "pulumi config set --secret --path 'webstack:app.secrets.STRIPE_API_KEY' <value>"),
    ("secret given in plaintext", stack(app={**OK_APP, "secrets": {"DB_PASSWORD": "hunter2"}}), set(),
     "webstack:app.secrets.DB_PASSWORD:",
     "pulumi config set --secret --path 'webstack:app.secrets.DB_PASSWORD' <value>"),
    ("same name in env and secrets",
     stack(app={**OK_APP, "env": {"REGION": "eu"}, "secrets": {"REGION": "eu"}}), {"app"},
     "webstack:app.env.REGION:", "also set in app.secrets"),
    ("kubeconfig in plaintext", stack(cluster={"mode": "kubeconfig", "kubeconfig": "apiVersion: v1"}), set(),
     "webstack:cluster.kubeconfig:", "pulumi config set --secret --path 'webstack:cluster.kubeconfig'"),
    ("cluster mode unknown", stack(cluster={"mode": "eks"}), set(),
     "webstack:cluster.mode:", "must be one of 'create', 'kubeconfig', 'stack_reference', 'context', got 'eks'"),
    ("stack reference malformed", stack(cluster={"mode": "stack_reference", "stack": "platform"}), set(),
     "webstack:cluster.stack:", "does not match"),
    ("key of another cluster mode", stack(cluster={"mode": "create", "kubeconfig": "x"}), {"cluster"},
     "webstack:cluster.kubeconfig:", "unknown key"),
    ("local target cannot create EKS", stack(target="local"), set(),
     "webstack:cluster.mode:", "pulumi config set --path 'webstack:cluster.mode' context"),
    ("context mode on aws", stack(cluster={"mode": "context"}), set(),
     "webstack:cluster.mode:", "'context' is for target local"),
    ("domain not a hostname", stack(app={**OK_APP, "domain": "https://api.example.com"}), set(),
     "webstack:app.domain:", "e.g. api.example.com"),
    ("certificate not an ACM ARN", stack(app={**OK_APP, "certificate_arn": "my-cert"}), set(),
     "webstack:app.certificate_arn:", "arn:aws:acm:"),
    ("namespace invalid", stack(namespace="Web_Stack"), set(),
     "webstack:namespace:", "'Web_Stack' is not a DNS label"),
    ("prod image by tag", stack(environment="prod"), set(),
     "webstack:app.image:", "prod needs an image by digest"),
    ("keep-alive not above the load balancer's", stack(fastapi={"server": {"keep_alive_timeout_seconds": 60}}), set(),
     "webstack:fastapi.server.keep_alive_timeout_seconds:", "not above the load balancer's idle timeout"),
    ("more workers than memory holds", stack(fastapi={"server": {"workers": 8}}), set(),
     "webstack:fastapi.server.workers:", "above app.resources.memory_limit (512Mi)"),
    ("workers zero", stack(fastapi={"server": {"workers": 0}}), set(),
     "webstack:fastapi.server.workers:", "out of range (1..64, or auto)"),
    ("concurrency not a number", stack(fastapi={"server": {"limit_concurrency": "lots"}}), set(),
     "webstack:fastapi.server.limit_concurrency:", "auto"),
    ("trust every proxy", stack(fastapi={"server": {"forwarded_allow_ips": ["0.0.0.0/0"]}}), set(),
     "webstack:fastapi.server.forwarded_allow_ips.0:", "'0.0.0.0/0' allows the whole internet"),
    ("local database without a password",
     stack(target="local", cluster={"mode": "context"}, fastapi={"database": {"enabled": True}}), set(),
     "webstack:fastapi.database.local_password:", "pulumi config set --secret --path"),
    ("local database password on aws", stack(fastapi={"database": {"local_password": "x"}}), {"fastapi"},
     "webstack:fastapi.database.local_password:", "RDS, which generates and rotates"),
    ("worker memory not a quantity", stack(fastapi={"server": {"worker_memory": "lots"}}), set(),
     "webstack:fastapi.server.worker_memory:", "'lots' is not a Kubernetes quantity (e.g."),
    ("server kind unknown", stack(fastapi={"server": {"kind": "hypercorn"}}), set(),
     "webstack:fastapi.server.kind:", "must be one of 'uvicorn' or 'granian', got 'hypercorn'"),
    ("a listen queue Granian refuses", stack(fastapi={"server": {"kind": "granian", "backlog": 64}}), set(),
     "webstack:fastapi.server.backlog:", "64 is below Granian's smallest listen queue (128); use 128..65535 or auto"),
    # Refused because they would change nothing (an accepted key always does something).
    ("database key without the database", stack(fastapi={"database": {"instance_class": "db.t4g.small"}}), set(),
     "webstack:fastapi.database.instance_class:", "fastapi.database.enabled is false"),
    ("RDS key on a local stack",
     stack(target="local", cluster={"mode": "context"},
           fastapi={"database": {"enabled": True, "multi_az": True, "local_password": "pw"}}), {"fastapi"},
     "webstack:fastapi.database.multi_az:", "an RDS setting; target local runs PostgreSQL in the cluster"),
    ("local-only database key on aws", stack(fastapi={"database": {"enabled": True, "local_storage": "5Gi"}}), set(),
     "webstack:fastapi.database.local_storage:", "target local only"),
    ("certificate on a local stack",
     stack(target="local", cluster={"mode": "context"},
           app={**OK_APP, "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0b1c"}), set(),
     "webstack:app.certificate_arn:", "target local serves through ingress-nginx"),
    ("certificate without a domain on aws",
     stack(app={**OK_APP, "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0b1c"}), set(),
     "webstack:app.certificate_arn:", "only used with app.domain"),
    ("domain without a certificate on aws", stack(app={**OK_APP, "domain": "api.example.com"}), set(),
     "webstack:app.certificate_arn:", "required with app.domain 'api.example.com' on aws"),
    ("the kit's database URL clashes with the app's own variable",
     stack(app={**OK_APP, "env": {"DATABASE_URL": "sqlite:///x"}}, fastapi={"database": {"enabled": True}}), set(),
     "webstack:app.database_url_env:", "'DATABASE_URL' is also set in app.env"),
    ("an empty word in the migration command",
     stack(fastapi={"database": {"enabled": True, "migrate_command": [""]}}), set(),
     "webstack:fastapi.database.migrate_command.0:", "at least 1 character"),
    ("RDS keys on a local django stack",
     stack(framework="django", target="local", cluster={"mode": "context"},
           django={"database": {"instance_class": "db.t4g.micro", "local_password": "pw"}}), {"django"},
     "webstack:django.database.instance_class:", "an RDS setting; target local runs PostgreSQL in the cluster"),
    ("static files bucket on a local django stack",
     stack(framework="django", target="local", cluster={"mode": "context"},
           django={"database": {"local_password": "pw"}, "static": {"price_class": "PriceClass_All"}}), {"django"},
     "webstack:django.static:", "Nginx in the pod serves the static files"),
    ("admin path every scanner tries, in prod, open to all",
     stack(framework="django", environment="prod", app={"image": "ghcr.io/a/b@sha256:" + "a" * 64},
           django={"admin": {"path": "admin/"}}), set(),
     "webstack:django.admin.path:", "'admin/' in prod with no django.admin.allowed_cidrs"),
    ("admin allowlist with a bad CIDR", stack(framework="django", django={"admin": {"allowed_cidrs": ["10.0.0.0/33"]}}),
     set(), "webstack:django.admin.allowed_cidrs.0:", "10.0.0.0/33"),
    ("connection budget the database cannot hold",
     stack(framework="django", django={"server": {"threads": 64}, "database": {"instance_class": "db.t4g.micro"}}),
     set(), "webstack:django.server.threads:", "database connections, above the"),
    ("existing cluster's ids on a local stack",
     stack(target="local", cluster={"mode": "kubeconfig", "kubeconfig": "apiVersion: v1", "cluster_name": "c"}),
     {"cluster"}, "webstack:cluster.cluster_name:", "used on target aws only"),
    ("network unused without a database",
     stack(cluster={"mode": "stack_reference", "stack": "acme/platform/prod"},
           network={"mode": "existing", "vpc_id": "vpc-0abc1234",
                    "private_subnet_ids": ["subnet-0abc1234", "subnet-0abc1235"]}),
     set(), "webstack:network:", "only used for the database here"),
    ("platform stack on a local target",
     stack(target="local", cluster={"mode": "stack_reference", "stack": "acme/platform/prod"}), set(),
     "webstack:cluster.mode:", "'stack_reference' reads an EKS cluster from a platform stack"),
    # The migration guard's arithmetic: every retry it promises must fit in the Job's deadline.
    ("migration retries beyond the Job's deadline",
     stack(framework="django", migrations={"lock_retries": 10, "lock_timeout_seconds": 30}), set(),
     "webstack:migrations.job_deadline_seconds:",
     "600 s cannot hold the migration's retries: 11 attempts x lock_timeout_seconds 30 + waits "
     "5+10+20+40+60+60+60+60+60+60 (backoff_seconds 5, max_backoff_seconds 60) + statement_timeout_seconds 60 "
     "+ 60 s for the pod to start = 885 s; raise job_deadline_seconds to 885 or more"),
    ("a statement timeout the Job's deadline cannot hold",
     stack(framework="django", migrations={"statement_timeout_seconds": 900}), set(),
     "webstack:migrations.job_deadline_seconds:", "statement_timeout_seconds 900"),
    ("backoff cap below the first wait",
     stack(framework="django", migrations={"backoff_seconds": 30, "max_backoff_seconds": 10}), set(),
     "webstack:migrations.max_backoff_seconds:", "10 is below backoff_seconds (30), the first wait; use 30 or more"),
    ("lock timeout of zero", stack(framework="django", migrations={"lock_timeout_seconds": 0}), set(),
     "webstack:migrations.lock_timeout_seconds:", "must be 1..60, got 0"),
    ("guard interpreter with arguments", stack(framework="django", migrations={"python": "python -u"}), set(),
     "webstack:migrations.python:", "'python -u' does not match"),
    ("migrations key misspelled", stack(framework="django", migrations={"lock_timeout": 5}), set(),
     "webstack:migrations.lock_timeout:", "did you mean 'lock_timeout_seconds'?"),
    ("migrations without a database", stack(migrations={"lock_retries": 3}), set(),
     "webstack:migrations:", "no release step migrates a database"),
]


@pytest.mark.parametrize("config,secret_keys,where,hint", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_names_the_key_and_the_fix(config, secret_keys, where, hint):
    with pytest.raises(ConfigError) as caught:
        load_settings(config, secret_keys)
    lines = caught.value.problems
    matching = [line for line in lines if line.startswith(where)]
    assert matching, f"no problem reported for {where}: {lines}"
    assert any(hint in line for line in matching), f"{hint!r} not in {matching}"


def test_every_problem_is_reported_at_once_one_line_each():
    config = {"framework": "fastapi", "environment": "qa", "target": "mars",
              "app": {"port": 1, "imag": "x"}, "django": {}, "cluster": RUNNER}
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    keys = sorted(line.split(": ", 1)[0] for line in caught.value.problems)
    assert keys == ["webstack:app.imag", "webstack:app.image", "webstack:app.port", "webstack:django",
                    "webstack:environment", "webstack:target"]
    assert all("\n" not in line for line in caught.value.problems)


def test_a_misspelled_framework_and_a_missing_key_are_both_reported():
    with pytest.raises(ConfigError) as caught:
        load_settings({"framwork": "fastapi", "environment": "qa", "cluster": RUNNER})
    keys = sorted(line.split(": ", 1)[0] for line in caught.value.problems)
    assert keys == ["webstack:app", "webstack:environment", "webstack:framework", "webstack:framwork"]
    assert any("did you mean 'framework'?" in line for line in caught.value.problems)


def test_a_plaintext_secret_is_never_echoed_back():
    with pytest.raises(ConfigError) as caught:
        load_settings(stack(app={**OK_APP, "secrets": {"TOKEN": "s3cr3t-value"},
                                      "env": {"GITHUB_TOKEN": "ghp_leaky"}}))
    assert "s3cr3t-value" not in str(caught.value)
    assert "ghp_leaky" not in str(caught.value)


def test_the_error_is_a_pulumi_run_error_so_pulumi_prints_no_traceback():
    import pulumi

    with pytest.raises(pulumi.RunError):
        load_settings({})
