"""The lint-migrations command itself (cli/lint_migrations/__init__.py says what it checks)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli.lint_migrations import DEFAULT_TIMEOUT_S, rules
from cli.lint_migrations.rules import Finding, Migration
from cli.lint_migrations.scratch_postgres import ScratchPostgres, ScratchPostgresError, find_bin_dir
from cli.lint_migrations.sql import (django_operation_at, find_squawk, run_squawk, split_alembic_sql, squawk_knows,
                                     squawk_version, statement_at)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# The reference apps run in their own virtualenvs, which tools/setup creates.
REFERENCE_PYTHONS = {ROOT / "stacks" / "django" / "app": ROOT / ".venv-django",
                     ROOT / "stacks" / "fastapi" / "app": ROOT / ".venv-app"}
GIT_TIMEOUT_S = 60
# Alembic's offline mode connects nowhere; an env.py that tries anyway meets a refused port on
# loopback at once (9: discard, nothing listens) rather than a real database.
OFFLINE_DATABASE = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": "9", "DATABASE_NAME": "offline",
                    "DATABASE_USER": "offline", "DATABASE_PASSWORD": "offline", "PGPASSWORD": "offline",
                    "DATABASE_SSLMODE": "disable"}
OFFLINE_URL = "postgresql://offline:offline@127.0.0.1:9/offline?sslmode=disable"
WAIVER_HINT = "# webstack: allow <rule> -- <why it is safe here>"


class LintError(RuntimeError):
    """The migrations could not be linted (a tool, the app or a flag is wrong); exit status 2."""


def command(args: argparse.Namespace) -> int:
    try:
        target = resolve_target(args)
        report = lint(target)
    except LintError as err:
        print(f"lint-migrations: {err}", file=sys.stderr)
        return 2
    print(report.text())
    return 1 if report.findings else 0


# --- what to lint, and with what ------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    framework: str  # django | fastapi
    app_dir: Path
    python: Path
    pg_version: str
    env: dict[str, str]  # the app's env without the database, which the lint sets
    url_env: str | None  # the variable that holds the database as one URL
    since: str | None = None
    alembic_ini: Path | None = None
    postgres_bin: Path | None = None
    squawk: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    pg_version_from: str = "the kit's default"


def kit_pg_version() -> str:
    """The PostgreSQL major the kit deploys when a stack says nothing (RDS's engine_version)."""
    from components.database import DatabaseArgs

    return str(DatabaseArgs.model_fields["engine_version"].default)


def image_pg_version(image: str) -> str | None:
    """`docker.io/library/postgres:17.6-bookworm` -> 17.6; None for an image by digest only."""
    match = re.search(r":(\d+(?:\.\d+)?)[^:/@]*(?:@|$)", image)
    return match.group(1) if match else None


@dataclass(frozen=True)
class StackFacts:
    framework: str
    pg_version: str | None
    pg_version_from: str
    env: dict[str, str]
    secret_names: tuple[str, ...]
    url_env: str | None


def stack_facts(stack: str) -> StackFacts:
    """What the lint takes from a stack: its framework, its PostgreSQL version, and the env the kit
    gives its release Job (app.env; app.secrets by name only, as their values are encrypted)."""
    from cli.render import load_stack_file
    from stacks.config import load_settings
    from stacks.errors import ConfigError

    try:
        loaded = load_stack_file(stack)
    except SystemExit as missing:  # no Pulumi.<stack>.yaml: the message lists the stacks there are
        raise LintError(str(missing)) from None
    prefix = "webstack:"
    values = {k[len(prefix):]: v for k, v in loaded.config.items() if k.startswith(prefix)}
    secret = {k[len(prefix):] for k in loaded.secret_keys if k.startswith(prefix)}
    try:
        settings = load_settings(values, secret)
    except ConfigError as err:
        raise LintError(f"stack {stack}: {err}") from None
    database = settings.django.database if settings.framework == "django" else settings.fastapi.database
    if settings.target == "local":
        version, source = image_pg_version(database.local_image), f"stack {stack}'s local_image"
    else:
        version, source = database.engine_version, f"stack {stack}'s engine_version"
    return StackFacts(framework=settings.framework, pg_version=version, pg_version_from=source,
                      env=dict(settings.app.env), secret_names=tuple(settings.app.secrets),
                      url_env=settings.app.database_url_env)


def detect_framework(app_dir: Path) -> str | None:
    if (app_dir / "manage.py").is_file():
        return "django"
    if (app_dir / "alembic.ini").is_file():
        return "fastapi"
    return None


def default_python(app_dir: Path) -> Path | None:
    candidates = [REFERENCE_PYTHONS.get(app_dir.resolve()), app_dir / ".venv", app_dir / "venv"]
    for venv in candidates:
        if venv is not None and (venv / "bin" / "python").exists():
            return venv / "bin" / "python"
    return None


def manage_py_settings(app_dir: Path) -> str | None:
    """The settings module manage.py sets by default (`os.environ.setdefault(...)`)."""
    manage = app_dir / "manage.py"
    if not manage.is_file():
        return None
    match = re.search(r"""setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']""", manage.read_text())
    return match.group(1) if match else None


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LintError(f"--env {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def resolve_target(args: argparse.Namespace) -> Target:
    """The app, its framework, interpreter, env and PostgreSQL version, from the stack and the flags
    (a flag wins); every problem says which flag fixes it."""
    facts = stack_facts(args.stack) if args.stack else None
    app_dir = (args.app_dir or Path.cwd()).resolve()
    if not app_dir.is_dir():
        raise LintError(f"--app-dir {app_dir}: no such folder")
    found = detect_framework(app_dir)
    framework = args.framework or (facts.framework if facts else None) or found
    if framework is None:
        raise LintError(f"{app_dir} has neither manage.py (Django) nor alembic.ini (Alembic): pass --app-dir (the "
                        "app's folder) or --framework")
    if facts and args.framework and args.framework != facts.framework:
        raise LintError(f"--framework {args.framework}, but stack {args.stack} is {facts.framework}")
    if found and found != framework:
        raise LintError(f"{app_dir} looks like a {found} app ({'manage.py' if found == 'django' else 'alembic.ini'}), "
                        f"not {framework}: check --app-dir")
    python = args.python or default_python(app_dir)
    if python is None or not python.exists():
        raise LintError(f"no interpreter for the app: {python or 'none found'}; pass --python (the app's own "
                        f"virtualenv, e.g. {app_dir / '.venv' / 'bin' / 'python'})")

    env: dict[str, str] = {}
    if facts:
        # Secrets only need to exist for the settings to import; the SQL never depends on them.
        env.update({name: "webstack-lint-stand-in-" + secrets.token_urlsafe(32) for name in facts.secret_names})
        env.update(facts.env)
    env.update(parse_env(args.env))
    if framework == "django":
        settings = args.settings or env.get("DJANGO_SETTINGS_MODULE") or manage_py_settings(app_dir)
        if not settings:
            raise LintError("no Django settings module: pass --settings (or set DJANGO_SETTINGS_MODULE in the "
                            "stack's app.env)")
        env["DJANGO_SETTINGS_MODULE"] = settings
    elif args.settings:
        raise LintError("--settings is for Django apps")

    alembic_ini = None
    if framework == "fastapi":
        alembic_ini = (args.alembic_ini or app_dir / "alembic.ini").resolve()
        if not alembic_ini.is_file():
            raise LintError(f"{alembic_ini}: no such file; pass --alembic-ini")

    pg_version, pg_from = args.pg_version, "--pg-version"
    if not pg_version and facts and facts.pg_version:
        pg_version, pg_from = facts.pg_version, facts.pg_version_from
    if not pg_version:
        pg_version, pg_from = kit_pg_version(), "the kit's default"
    if not re.fullmatch(r"\d+(\.\d+){0,2}", pg_version):
        raise LintError(f"--pg-version {pg_version!r}: expected a version such as 17 or 16.4")
    return Target(framework=framework, app_dir=app_dir, python=python.absolute(), pg_version=pg_version,
                  env=env, url_env=facts.url_env if facts else "DATABASE_URL", since=args.since,
                  alembic_ini=alembic_ini, postgres_bin=args.postgres_bin, squawk=args.squawk, timeout=args.timeout,
                  pg_version_from=pg_from)


def changed_since(app_dir: Path, ref: str) -> set[Path]:
    """Files under `app_dir` added, changed or renamed since `ref`'s merge base with HEAD, and
    files git does not track yet (a migration just written)."""
    def git(*argv: str, cwd: Path = app_dir) -> str:
        try:
            result = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise LintError(f"--since {ref}: git {' '.join(argv)}: {err}") from None
        if result.returncode != 0:
            raise LintError(f"--since {ref}: git {' '.join(argv)}: {result.stderr.strip()} (in a shallow clone, "
                            "fetch the base first: actions/checkout with fetch-depth: 0)")
        return result.stdout

    top = Path(git("rev-parse", "--show-toplevel").strip())
    base = git("merge-base", ref, "HEAD").strip()
    where = os.path.relpath(app_dir, top)
    names = git("diff", "--name-only", "--diff-filter=AMR", base, "--", where, cwd=top).splitlines()
    names += git("ls-files", "--others", "--exclude-standard", "--", where, cwd=top).splitlines()
    return {(top / name).resolve() for name in names if name}


# --- running the app's interpreter --------------------------------------------------------------

def app_environment(target: Target, database: Mapping[str, str], url: str) -> dict[str, str]:
    """The environment the app's interpreter gets: this shell's, without any database or libpq
    variable (the lint must never reach a database the shell points at), then the app's env, then
    the database the lint chose, as the kit names it for a release Job."""
    from components.k8s_pod import expand_env, ordered_env

    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DATABASE_") or k.startswith("PG") or k == target.url_env
                   or k in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))}
    kit = {**database, **({target.url_env: url} if target.url_env else {})}
    # `$(DATABASE_HOST)` in app.env is expanded as the kubelet expands it for the release Job.
    app = expand_env(ordered_env(target.env, first=[{"name": k, "value": v} for k, v in kit.items()]))
    env.update(app)
    env.update(kit)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_driver(target: Target, driver: str, env: Mapping[str, str], *argv: str) -> dict:
    """Runs one of the driver scripts in the app's interpreter, from the app's folder (as
    `python -c`, so the app's folder is first on sys.path and nothing of the kit's is), and
    returns the JSON it wrote."""
    source = (HERE / driver).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="webstack-lint-") as tmp:
        out = Path(tmp) / "out.json"
        try:
            result = subprocess.run([str(target.python), "-c", source, str(out), *argv], cwd=target.app_dir,
                                    env=dict(env), capture_output=True, text=True, timeout=target.timeout,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LintError(f"{target.python} did not finish in {target.timeout:.0f} s (--timeout)") from None
        if not out.exists():
            raise LintError(f"{target.python} failed (exit {result.returncode}):\n{_tail(result.stderr)}")
        data = json.loads(out.read_text(encoding="utf-8"))
    if data.get("error"):
        raise LintError(_driver_error(target, data, result.stderr))
    return data


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _driver_error(target: Target, data: dict, stderr: str) -> str:
    if data.get("missing_linter"):
        return (f"{data['error']}\n  install it in the app's environment: {target.python} -m pip install "
                "django-migration-linter==6.0.0 (a dev dependency: the reference app's is in "
                "stacks/django/app/requirements-dev.txt)")
    if data.get("wrong_database"):
        return data["error"]
    trace = data["error"].strip()
    last = trace.splitlines()[-1] if trace else "no error text"
    if re.search(r"No module named '(django|alembic)'", last):
        hint = "--python must be the app's own interpreter, with its packages installed"
    else:
        hint = ("the app gets the env of its release Job from the STACK argument (app.env; app.secrets as "
                "stand-ins) and from --env NAME=VALUE")
    return f"the app failed in {target.python}: {last}\n  {hint}\n{_tail(trace, 12)}\n{_tail(stderr, 5)}".rstrip()


# --- the two frameworks -------------------------------------------------------------------------

@dataclass
class Rendered:
    """The migrations to check, with their SQL, and what was found without squawk."""

    migrations: list[Migration]
    findings: list[Finding] = field(default_factory=list)
    rendered_on: str = ""


def render_django(target: Target, selected: set[Path] | None) -> Rendered:
    bin_dir = find_bin_dir(target.postgres_bin)
    if bin_dir is None:
        raise LintError("Django's sqlmigrate needs a live PostgreSQL (it reads the schema to name constraints), so "
                        "the lint starts a throwaway server: install PostgreSQL's server binaries (initdb, pg_ctl: "
                        "apt-get install postgresql, brew install postgresql) or pass --postgres-bin DIR")
    try:
        with ScratchPostgres(bin_dir) as pg, tempfile.TemporaryDirectory(prefix="webstack-lint-") as tmp:
            chosen = Path(tmp) / "selected.json"
            chosen.write_text(json.dumps(None if selected is None else sorted(map(str, selected))))
            env = app_environment(target, pg.env(), pg.url())
            data = run_driver(target, "django_driver.py", env, str(chosen))
            version = pg.server_version()
    except ScratchPostgresError as err:
        raise LintError(f"the scratch PostgreSQL did not start: {err}") from None
    out = Rendered(migrations=[], rendered_on=f"sqlmigrate on a scratch PostgreSQL {version}")
    for item in data["migrations"]:
        migration = Migration(f"{item['app_label']} {item['name']}", Path(item["path"]), item["sql"])
        out.migrations.append(migration)
        for issue in item["issues"]:
            if issue["code"] not in rules.LINTER_REPORTED:
                continue
            where = ", ".join(f"{k} {issue[k]}" for k in ("table", "column") if issue.get(k))
            out.findings.append(Finding(migration, issue["code"], "django-migration-linter",
                                        issue["operation"] or "(the migration as a whole)",
                                        message=issue["message"] + (f" ({where})" if where else "")))
    failed = data.get("not_applied")
    if failed:
        migration = Migration(f"{failed['app_label']} {failed['name']}", Path(failed["path"]))
        if migration.path not in {m.path for m in out.migrations}:
            out.migrations.append(migration)
        out.findings.append(Finding(migration, "migration-not-applied", "webstack", "migrate",
                                    message=_tail(failed["error"], 3)))
    return out


def render_alembic(target: Target, selected: set[Path] | None) -> Rendered:
    env = app_environment(target, OFFLINE_DATABASE, OFFLINE_URL)
    assert target.alembic_ini is not None
    data = run_driver(target, "alembic_driver.py", env, str(target.alembic_ini))
    parts = split_alembic_sql(data["sql"])
    files = {rev: Path(path) for rev, path in data["revisions"].items()}
    migrations = []
    for rev, sql in parts.items():  # in the order `upgrade` runs them
        path = files.get(rev)
        if path is None or (selected is not None and path not in selected):
            continue
        migrations.append(Migration(f"revision {rev}", path, sql))
    return Rendered(migrations=migrations, rendered_on="alembic upgrade heads --sql (offline)")


# --- the lint -------------------------------------------------------------------------------------

@dataclass
class Report:
    target: Target
    checked: list[Migration]
    findings: list[Finding]
    waived: list[tuple[rules.Waiver, Finding]]
    rendered_on: str
    squawk: str

    def text(self) -> str:
        t = self.target
        scope = f"changed since {t.since}" if t.since else "all of the app's"
        lines = [f"{t.framework} app {_shown(t.app_dir)}: {len(self.checked)} migration(s) checked ({scope}); SQL "
                 f"from {self.rendered_on}; {self.squawk} for PostgreSQL {t.pg_version} ({t.pg_version_from})"]
        for migration in self.checked:
            found = [f for f in self.findings if f.migration.path == migration.path]
            if not found:
                continue
            lines.append("")
            lines.append(f"{migration.label}  ({_shown(migration.path)})")
            for finding in found:
                why, fix = rules.advice(finding.rule, t.framework, finding.message, finding.help)
                where = f":{finding.line}" if finding.line else ""
                lines.append(f"  {finding.rule} [{finding.tool}]{where} in: {finding.operation}")
                if finding.statement and finding.statement != finding.operation:
                    lines.append(f"    sql: {finding.statement}")
                # squawk's own words add nothing to the kit's explanation of its rule.
                if finding.message and not (finding.tool == "squawk" and finding.rule in rules.ADVICE):
                    lines.append(f"    found: {finding.message}")
                lines.append(f"    why: {why}")
                lines.append(f"    fix: {fix}")
        if self.waived:
            lines.append("")
            lines.append("waived (reviewed in the migration):")
            for waiver, finding in self.waived:
                lines.append(f"  {finding.migration.label}: {finding.rule} in {finding.operation} -- {waiver.reason}")
        lines.append("")
        if self.findings:
            count = len({f.migration.path for f in self.findings})
            lines.append(f"{len(self.findings)} finding(s) in {count} migration(s). Rewrite as the fix says; or, "
                         f"once reviewed, waive one in its migration: {WAIVER_HINT}")
        elif not self.checked:
            lines.append(f"no migration to check{f' (none changed since {t.since})' if t.since else ''}")
        else:
            lines.append(f"no finding in {len(self.checked)} migration(s)")
        return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def lint(target: Target) -> Report:
    squawk = find_squawk(target.squawk)
    if squawk is None:
        raise LintError("squawk not found: pip install squawk-cli==2.70.0 into this virtualenv (tools/setup does), "
                        "or pass --squawk PATH")
    selected = changed_since(target.app_dir, target.since) if target.since else None
    if target.framework == "django":
        rendered = render_django(target, selected)
    else:
        rendered = render_alembic(target, selected)
    with tempfile.TemporaryDirectory(prefix="webstack-lint-") as tmp:
        work = Path(tmp)
        findings = rendered.findings + squawk_findings(squawk, rendered.migrations, target, work)
        waivers = [w for m in rendered.migrations for w in rules.read_waivers(m.path)]
        candidates = {w.rule for w in waivers if w.rule not in rules.SQUAWK_EXCLUDED
                      and w.rule not in rules.SQUAWK_NOT_A_RULE and re.fullmatch(r"[a-z][a-z-]*", w.rule)}
        squawk_rules = squawk_knows(squawk, sorted(candidates), work)
        version = squawk_version(squawk)

    def known(rule: str) -> bool:
        return (rule in squawk_rules or rule in rules.SQUAWK_NOT_A_RULE
                or (target.framework == "django" and rule in rules.LINTER_REPORTED))

    findings = rules.drop_covered(findings)
    kept, waived = rules.apply_waivers(findings, rendered.migrations, waivers, known)
    return Report(target, rendered.migrations, kept, waived, rendered.rendered_on, version)


def squawk_findings(squawk: Path, migrations: Sequence[Migration], target: Target, work: Path) -> list[Finding]:
    """squawk on one SQL file per migration (named after it, so a finding maps back)."""
    files: dict[Path, Migration] = {}
    for index, migration in enumerate(migrations):
        if not migration.sql.strip():
            continue
        path = work / f"{index:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', migration.label)}.sql"
        path.write_text(migration.sql, encoding="utf-8")
        files[path] = migration
    try:
        violations = run_squawk(squawk, list(files), target.pg_version, work)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        raise LintError(str(err)) from None
    findings = []
    for v in violations:
        migration = files[v.file]
        statement = statement_at(migration.sql, v.line)
        operation = django_operation_at(migration.sql, v.line) if target.framework == "django" else ""
        findings.append(Finding(migration, v.rule, "squawk", operation or statement, statement=statement,
                                message=v.message, help=v.help))
    return findings
