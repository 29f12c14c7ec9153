"""Bring your own Django project: a stock-layout project that is not ours (tests/byo_app/apps/notes:
`mysite` from `django-admin startproject`, one app `notes` with a model and its migration;
settings read DATABASE_URL with dj-database-url, DJANGO_SECRET_KEY and ALLOWED_HOSTS from the
environment), deployed with the stack config a user of target local writes today, and run with
exactly what the kit renders for it: the release Job (`python manage.py migrate --noinput`), then
the Deployment's Gunicorn command (stacks/django/server.py), each with its env expanded as the
kubelet expands it (components.k8s_pod.expand_env, in the rendered order), against a real
PostgreSQL.

Why the config looks as it does. Target local gives Django no database yet, so the project
brings its own, as the README says: the URL holds a password, which the kit refuses in
`app.env`, so it is `app.secrets.DATABASE_URL` (a Pulumi secret, delivered through the app's
Secret), with `app.egress` opening the database's port. ALLOWED_HOSTS names the public host; the kubelet's
probes arrive with Host "<pod IP>:8000", so the settings add POD_IP, which the kit gives Django pods
(as the README's Django example does).

Substitutions (kubelet.Container.local makes these and nothing else, and lists each one):
- the image (`COPY . /app`, `WORKDIR /app`, as IMAGE says): /app -> tests/byo_app/apps/notes;
  neither the Job nor the Deployment sets a working dir, so both run in the image's WORKDIR; the
  image's Python and packages -> .venv-byo, first on PATH;
- env from the app's Secret (DATABASE_URL, DJANGO_SECRET_KEY): the values the program put in it
  (the stack config's secrets), which the render masks;
- the database address in DATABASE_URL: the user's database, db.example.internal:5432 ->
  127.0.0.1 and the test PostgreSQL's port, where the URL's role and database are created with
  its password;
- the emptyDir /tmp -> a fresh temp dir;
- the pod field POD_IP (status.podIP) -> the stand-in pod IP the probes' Host header carries;
- `--bind 0.0.0.0:8000` -> 127.0.0.1 and a free port; the kubelet's probes (the manifest's paths)
  are sent there with the Host header a probe carries (<pod IP>:8000, a stand-in pod IP).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from harness import free_port, run_command
from kubelet import APPS, Container, Database, Image, probe_host, sql_literal

from stacks.django.server import MIGRATE

STACK = "byo-django"
DB_HOST, DB_PORT, DB_USER, DB_NAME, DB_PASSWORD = "db.example.internal", 5432, "notes", "notes", "notes-db-pw-7Hq2"
CONFIG = {
    "webstack:framework": "django", "webstack:environment": "dev", "webstack:target": "local",
    "webstack:cluster": {"mode": "context"},
    "webstack:app": {
        "image": "ghcr.io/example/notes:1.0",
        "release": [{"command": ["python", "manage.py", "migrate", "--noinput"]}],
        "env": {"ALLOWED_HOSTS": "notes.example.com"},
        "secrets": {"DATABASE_URL": f"postgresql://{DB_USER}:{DB_PASSWORD}@{DB_HOST}:{DB_PORT}/{DB_NAME}",
                    "DJANGO_SECRET_KEY": "byo-django-test-secret-key-0123456789-abcdefghij"},
        "egress": [{"cidr": "10.20.0.0/24", "port": DB_PORT}],
    },
    "webstack:django": {"server": {"wsgi_app": "mysite.wsgi:application"}},
}
# `pulumi config set --secret --path 'webstack:app.secrets.DATABASE_URL'` makes all of webstack:app secret.
SECRET_KEYS = {"webstack:app"}
IMAGE = Image(APPS / "notes", workdir="/app")


@pytest.fixture(scope="module")
def database(postgres) -> Database:
    """The user's database, as its URL names it, in the test PostgreSQL."""
    postgres.psql("postgres", f'CREATE ROLE "{DB_USER}" LOGIN PASSWORD {sql_literal(DB_PASSWORD)}')
    postgres.psql("postgres", f'CREATE DATABASE "{DB_NAME}" OWNER "{DB_USER}"')
    return Database(host=DB_HOST, port=DB_PORT, local_port=postgres.port)


@pytest.fixture(scope="module")
def released(job, database, tmp_path_factory):
    """The release Job, run once as rendered: (its result, what it was given)."""
    local = job.local(IMAGE, database=database, scratch=tmp_path_factory.mktemp("job"), port=None)
    return run_command(local.argv, local.env, local.cwd, timeout=180), local


def test_the_release_job_runs_manage_py_migrate_in_the_image_workdir(job, released, postgres):
    assert job.argv == MIGRATE == ["python", "manage.py", "migrate", "--noinput"]
    assert job.working_dir is None
    result, local = released
    print("substitutions:", *local.substitutions, sep="\n  ")
    assert result.returncode == 0, result.stdout + result.stderr
    assert local.cwd == IMAGE.dir
    assert "Applying notes.0001_initial... OK" in result.stdout

    # The Secret's URL reached the project unchanged but for the address.
    url = urlsplit(local.env["DATABASE_URL"])
    assert (url.username, url.password, url.hostname, url.port, url.path) == (
        DB_USER, DB_PASSWORD, "127.0.0.1", postgres.port, f"/{DB_NAME}")
    assert postgres.psql(DB_NAME, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes_note'") == DB_USER
    assert postgres.psql(DB_NAME, "SELECT name FROM django_migrations WHERE app = 'notes'") == "0001_initial"

    # The next release runs the same Job again: nothing to do, and it still succeeds.
    again = run_command(local.argv, local.env, local.cwd, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No migrations to apply." in again.stdout


def test_the_rendered_gunicorn_command_serves_the_project_its_probes_and_a_database_view(
        rendered, released, database, postgres, serve, tmp_path):
    assert released[0].returncode == 0, "the release Job must have migrated first"
    app = Container(rendered[0], "Deployment-web-app.app.json", rendered[1])
    assert app.argv[:2] == ["gunicorn", "mysite.wsgi:application"]
    assert app.run.flag("--bind") == "0.0.0.0:8000"
    port = free_port()
    local = app.local(IMAGE, database=database, scratch=tmp_path / "pod", port=port)
    print("substitutions:", *local.substitutions, sep="\n  ")
    assert local.cwd == IMAGE.dir

    probes = app.probes()
    assert set(probes) == {"startup", "readiness", "liveness"}
    # Ready as the kubelet sees it: its probes carry the pod IP as Host.
    ready_path, ready_port = probes["readiness"]
    server = serve(local.argv, local.env, cwd=local.cwd, port=port, ready_path=ready_path,
                   ready_headers=probe_host(ready_port))
    for kind, (path, container_port) in probes.items():
        status, _, body = server.get(path, headers=probe_host(container_port), timeout=5)
        assert status == 200, f"{kind} probe GET {path}: {status} {body[:300]!r}"

    public = {"Host": "notes.example.com"}  # users come through the ingress, by the public name
    status, created = server.json("POST", "/notes/", {"text": "deployed with webstack"}, headers=public, timeout=10)
    assert status == 201, created
    assert created["text"] == "deployed with webstack"
    status, listed = server.json("GET", "/notes/", headers=public, timeout=10)
    assert status == 200 and listed == [created]
    assert postgres.psql(DB_NAME, "SELECT text FROM notes_note") == "deployed with webstack"
    # Gunicorn's access log on stdout (--access-logfile -), as `kubectl logs` shows it.
    assert '"POST /notes/ HTTP/1.1" 201' in server.logs()

    # A pod's end: SIGTERM, and Gunicorn stops its workers and exits 0 within the grace period.
    assert server.stop(timeout=35) == 0, server.logs()[-3000:]
    assert "Shutting down: Master" in server.logs()
