"""Bring your own Django project: a stock-layout project that is not ours (tests/byo_app/apps/notes:
`mysite` from `django-admin startproject`, one app `notes` with a model and its migration;
settings read DATABASE_URL with dj-database-url, DJANGO_SECRET_KEY, ALLOWED_HOSTS and the static
settings from the environment), deployed with the stack config a user of target local writes
today, and run with exactly what the kit renders for it: the release Job (`python manage.py
migrate --noinput`), the init container (`python manage.py collectstatic --noinput` into the
volume Nginx serves), then the pod: the rendered Nginx in front of the rendered Gunicorn command
(`gunicorn --config /etc/webstack/gunicorn/gunicorn.conf.py mysite.wsgi:application`, on a unix
socket), each with its env expanded as the kubelet expands it (components.k8s_pod.expand_env, in
the rendered order), against a real PostgreSQL.

Why the config looks as it does. On target local the kit runs Django's database itself (an
in-cluster PostgreSQL) and requires its password, `django.database.local_password`, as a Pulumi
secret; the project reads the URL the kit gives (DATABASE_URL, the password in it
percent-encoded). ALLOWED_HOSTS names the public host; the kubelet's probes arrive with Host
"<pod IP>:8000", so the settings add POD_IP, which the kit gives Django pods. STATIC_URL,
STATIC_ROOT and the manifest storage are as the README's worked example has them.

Substitutions (kubelet.Container.local and django_pod.Pod make these and nothing else, and list
each one; a failing test prints them):
- the image (`COPY . /app`, `WORKDIR /app`, as IMAGE says): /app -> tests/byo_app/apps/notes;
  neither the Job nor the pod's containers set a working dir, so all run in the image's WORKDIR;
  the image's Python and packages -> .venv-byo, first on PATH;
- env from the kit's Secrets (DATABASE_HOST, DATABASE_PASSWORD, PGPASSWORD, DATABASE_URL) and the
  app's (DJANGO_SECRET_KEY): the values the program put in them, which the render masks;
- the database address: the in-cluster Service (DATABASE_HOST, and the host in DATABASE_URL) ->
  127.0.0.1, port 5432 (DATABASE_PORT, and in DATABASE_URL) -> this module's PostgreSQL, where
  the rendered role and database (DATABASE_USER, DATABASE_NAME) are created with the stack's
  local_password, as the kit's PostgreSQL StatefulSet creates them;
- each emptyDir volume -> a fresh dir, shared where the pod shares it: Gunicorn's socket dir
  (/run/gunicorn) with Nginx, the static root (/var/www/static) between the init container and
  Nginx; /tmp, Nginx's /tmp/nginx;
- the rendered gunicorn.conf.py and nginx.conf: a copy with those paths rewritten, and Nginx's
  `listen 0.0.0.0:8000` and `listen 0.0.0.0:9000` (metrics) -> 127.0.0.1 and free ports;
- nginx -> Debian's nginx, run as `nobody` when the tests run as root;
- the pod fields: POD_IP (status.podIP) -> the stand-in pod IP the probes' Host header carries,
  the others -> harness stand-ins; the kubelet's probes (the manifest's paths and port) are sent
  to Nginx's port with that Host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
from django_pod import Pod, create_role, rendered_value
from harness_fixtures import postgres_fixture
from kubelet import APPS, Image, probe_host

from stacks.django.nginx import STATIC_CACHE_CONTROL
from stacks.django.server import MIGRATE

STACK = "byo-django"
# The in-cluster server's password, as `pulumi config set --secret --path
# 'webstack:django.database.local_password'` stores it: characters a URL reserves included, which
# the kit percent-encodes in DATABASE_URL and dj-database-url decodes.
LOCAL_PASSWORD = "notes p@ss:w/rd#7%?"
CONFIG = {
    "webstack:framework": "django", "webstack:environment": "dev", "webstack:target": "local",
    "webstack:cluster": {"mode": "context"},
    "webstack:app": {
        "image": "ghcr.io/example/notes:1.0",
        "release": [{"command": ["python", "manage.py", "migrate", "--noinput"]}],
        "env": {"ALLOWED_HOSTS": "notes.example.com"},
        "secrets": {"DJANGO_SECRET_KEY": "byo-django-test-secret-key-0123456789-abcdefghij"},
    },
    "webstack:django": {"server": {"wsgi_app": "mysite.wsgi:application"},
                        "database": {"local_password": LOCAL_PASSWORD}},
}
# `pulumi config set --secret --path` makes the whole top-level key secret.
SECRET_KEYS = {"webstack:app", "webstack:django"}
IMAGE = Image(APPS / "notes", workdir="/app")
PUBLIC = {"Host": "notes.example.com"}  # users come through the ingress, by the public name


postgres = postgres_fixture("postgres", scope="module", after="byo_venv",
                            doc="This module's own PostgreSQL: the kit names its role and database `app` here "
                                "as it does for the FastAPI app, which creates them in the shared one.")


@pytest.fixture(scope="module")
def pod(rendered, postgres, nginx_bin, nginx_user) -> Iterator[Pod]:
    """The pod's volumes and rendered files, the kit's database created; nothing run yet."""
    app = rendered.container("Deployment-web-app.app.json")
    create_role(postgres, rendered_value(app, "DATABASE_USER"), LOCAL_PASSWORD, rendered_value(app, "DATABASE_NAME"))
    pod = Pod(rendered, IMAGE, postgres, nginx_bin, nginx_user)
    try:
        yield pod
    finally:
        pod.close()


@pytest.fixture(scope="module")
def released(pod):
    """The release Job, run once as rendered: (its result, what it was given)."""
    return pod.run_job("Job-web-release-1-*.release.json")


@pytest.fixture(scope="module")
def collected(pod, released):
    """The init container, run as rendered once the release Job has: (its result, what it was given)."""
    assert released[0].returncode == 0, "the release Job runs before the pods"
    return pod.run_job("Deployment-web-app.init.json")


def explain(pod: Pod) -> str:
    logs = pod.gunicorn.logs()[-3000:] if pod.gunicorn else ""
    return "substitutions:\n  " + "\n  ".join(pod.substitutions) + "\ngunicorn:\n" + logs


def test_the_release_job_runs_manage_py_migrate_in_the_image_workdir(job, released, pod, postgres):
    # app.release's migrate step runs under the migration guard (recognised as a migration).
    assert job.argv[job.argv.index("--") + 1:] == MIGRATE == ["python", "manage.py", "migrate", "--noinput"]
    assert job.working_dir is None
    result, local = released
    assert result.returncode == 0, result.stdout + result.stderr + explain(pod)
    assert local.cwd == IMAGE.dir
    assert "Applying notes.0001_initial... OK" in result.stdout

    # The kit's URL reached the project unchanged but for the address: its role, its database and
    # the stack's password, percent-encoded.
    user, name = local.env["DATABASE_USER"], local.env["DATABASE_NAME"]
    url = urlsplit(local.env["DATABASE_URL"])
    assert (url.username, url.hostname, url.port, url.path) == (user, "127.0.0.1", postgres.port, f"/{name}")
    assert url.password == quote(LOCAL_PASSWORD, safe="")
    assert postgres.psql(name, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes_note'") == user
    assert postgres.psql(name, "SELECT name FROM django_migrations WHERE app = 'notes'") == "0001_initial"

    # The next release runs the same Job again: nothing to do, and it still succeeds.
    again, _ = pod.run_job("Job-web-release-1-*.release.json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No migrations to apply." in again.stdout


def test_the_init_container_collects_the_static_files_nginx_serves(collected, pod):
    result, local = collected
    assert result.returncode == 0, result.stdout + result.stderr + explain(pod)
    assert local.argv == ["python", "manage.py", "collectstatic", "--noinput"]
    manifest = json.loads((pod.volumes["shared-static"] / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    pod.start()
    try:
        served = pod.get(f"/static/{hashed}", headers=PUBLIC)
        assert served.status == 200 and served.body == (pod.volumes["shared-static"] / hashed).read_bytes()
        assert served.header("Cache-Control") == STATIC_CACHE_CONTROL
        assert pod.access_log_line(served.header("X-Request-ID"))["upstream_status"] == "", "Django served it"
    finally:
        pod.stop()


def test_the_rendered_pod_serves_the_project_its_probes_and_a_database_view(
        rendered, collected, pod, postgres):
    assert collected[0].returncode == 0, "the init container runs before the pod's containers"
    app = rendered.container("Deployment-web-app.app.json")
    assert app.argv == ["gunicorn", "--config", "/etc/webstack/gunicorn/gunicorn.conf.py", "mysite.wsgi:application"]
    assert app.run.flag("--bind") is None  # a unix socket, from the rendered gunicorn.conf.py
    pod.start()  # ready once the startup probe passes through Nginx
    try:
        assert pod.app_env["DATABASE_URL"].startswith("postgresql://")
        for container in ("app", "nginx"):
            for kind, (path, port) in rendered.container(f"Deployment-web-app.{container}.json").probes().items():
                assert port == pod.container_port
                resp = pod.get(path, headers=probe_host(port))
                assert resp.status == 200, f"{container} {kind} probe GET {path}: {resp.status} {resp.body[:300]!r}"

        created = pod.request("POST", "/notes/", body=json.dumps({"text": "deployed with webstack"}).encode(),
                              headers={**PUBLIC, "Content-Type": "application/json"})
        assert created.status == 201, created.body[:2000].decode() + explain(pod)
        assert created.json()["text"] == "deployed with webstack"
        listed = pod.get("/notes/", headers=PUBLIC)
        assert listed.status == 200 and listed.json() == [created.json()]
        assert postgres.psql(rendered_value(app, "DATABASE_NAME"), "SELECT text FROM notes_note") == \
            "deployed with webstack"
        # Nginx's JSON access log line, as `kubectl logs -c nginx` shows it; Gunicorn logs no access.
        line = pod.access_log_line(created.header("X-Request-ID"))
        assert (line["method"], line["uri"], line["status"], line["upstream_status"]) == ("POST", "/notes/", 201, "201")
        assert "POST /notes/" not in pod.gunicorn.logs()

        # The app container's end: SIGTERM, and Gunicorn stops its workers and exits 0 in time.
        assert pod.gunicorn.stop(timeout=35) == 0, explain(pod)
        assert "Shutting down: Master" in pod.gunicorn.logs()
    finally:
        pod.stop()
