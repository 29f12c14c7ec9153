"""`python -m cli lint-migrations`: unsafe migrations are reported with their operation and the safe
rewrite, the reference apps' migrations pass, and a waiver silences exactly its rule, only with a
reason.

The pure parts (the Alembic script split per revision, waivers) are tested on their own; the
rest runs the real command: each app's own interpreter, a scratch PostgreSQL for Django's
sqlmigrate, squawk and django-migration-linter, on copies of the reference apps with one unsafe
migration added.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.__main__ import main
from cli.lint_migrations.command import image_pg_version
from cli.lint_migrations.rules import (ADVICE, LINTER_COVERED_BY, SQUAWK_EXCLUDED, SQUAWK_NOT_A_RULE, Finding,
                                       Migration, Waiver, apply_waivers, drop_covered, read_waivers)
from cli.lint_migrations.scratch_postgres import find_bin_dir
from cli.lint_migrations.sql import django_operation_at, find_squawk, split_alembic_sql, squawk_knows, statement_at
from tests.fastapi_app.harness import require

ROOT = Path(__file__).resolve().parents[1]
DJANGO_APP = ROOT / "stacks" / "django" / "app"
FASTAPI_APP = ROOT / "stacks" / "fastapi" / "app"
DJANGO_PYTHON = ROOT / ".venv-django" / "bin" / "python"
APP_PYTHON = ROOT / ".venv-app" / "bin" / "python"


# --- what each tool needs ---------------------------------------------------------------------------

def need_squawk() -> Path:
    squawk = find_squawk()
    require(None if squawk else "squawk is not installed: tools/setup puts squawk-cli in .venv (requirements-dev.txt)")
    assert squawk is not None
    return squawk


def need_alembic_app() -> None:
    need_squawk()
    require(None if APP_PYTHON.exists() else ".venv-app is missing: run tools/setup")


def need_django_app() -> None:
    need_squawk()
    require(None if DJANGO_PYTHON.exists() else ".venv-django is missing: run tools/setup")
    linter = subprocess.run([str(DJANGO_PYTHON), "-c", "import django_migration_linter"], capture_output=True,
                            timeout=60)
    require(None if linter.returncode == 0 else "django-migration-linter is not in .venv-django: run tools/setup "
                                                "(stacks/django/app/requirements-dev.txt)")
    require(None if find_bin_dir() else "PostgreSQL's server binaries (initdb) are missing: run tools/setup as root")


def lint(capsys, *argv: str) -> tuple[int, str]:
    """The command's exit status and everything it printed."""
    status = main(["lint-migrations", *argv])
    out = capsys.readouterr()
    return status, out.out + out.err


def copy_app(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "app"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def alembic_head(app: Path) -> str:
    """The revision no other revision names as its down_revision."""
    revisions, parents = set(), set()
    for path in (app / "migrations" / "versions").glob("*.py"):
        text = path.read_text()
        revisions.add(re.search(r'^revision[^=]*=\s*"([^"]+)"', text, re.M).group(1))
        parents.update(re.findall(r'"([^"]+)"', re.search(r"^down_revision[^=]*=(.*)$", text, re.M).group(1)))
    (head,) = revisions - parents
    return head


def catalog_leaf(app: Path) -> str:
    """The catalog migration no other catalog migration depends on."""
    folder = app / "catalog" / "migrations"
    names = {p.stem for p in folder.glob("0*.py")}
    needed = {dep for p in folder.glob("0*.py") for dep in re.findall(r'\("catalog", "([^"]+)"\)', p.read_text())}
    (leaf,) = names - needed
    return leaf


def add_alembic_revision(app: Path, revision: str, body: str, *, header: str = "") -> Path:
    path = app / "migrations" / "versions" / f"{revision}_added.py"
    path.write_text(f'''"""Added by a test."""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{alembic_head(app)}"
branch_labels = None
depends_on = None
{header}

def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
''')
    return path


def add_django_migration(app: Path, name: str, operations: str, *, prelude: str = "", atomic: bool = True) -> Path:
    path = app / "catalog" / "migrations" / f"{name}.py"
    path.write_text(f'''"""Added by a test."""
from django.db import migrations, models
{prelude}

class Migration(migrations.Migration):
    atomic = {atomic}
    dependencies = [("catalog", "{catalog_leaf(app)}")]
    operations = [
{operations}
    ]
''')
    return path


def finding(output: str, rule: str) -> str:
    """The lines of one finding: from its `rule [tool]` line to the next finding's."""
    match = re.search(rf"^  {re.escape(rule)} \[[^\]]+\].*?(?=^  \S|^\S|\Z)", output, re.M | re.S)
    assert match, f"no {rule} finding in:\n{output}"
    return match.group(0)


# --- the pure parts -----------------------------------------------------------------------------

OFFLINE_SCRIPT = """BEGIN;

CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);

-- Running upgrade  -> 0001

CREATE TABLE items (id BIGINT, name VARCHAR(200) NOT NULL);

INSERT INTO alembic_version (version_num) VALUES ('0001');

-- Running upgrade 0001 -> 0002

ALTER TABLE items ADD COLUMN sku VARCHAR(64);

COMMIT;

CREATE INDEX CONCURRENTLY ix_items_sku ON items (sku);

BEGIN;

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

COMMIT;
"""


def test_the_offline_script_is_split_per_revision_each_part_in_the_transaction_it_runs_in():
    parts = split_alembic_sql(OFFLINE_SCRIPT)
    assert list(parts) == ["0001", "0002"]
    first, second = parts["0001"].splitlines(), parts["0002"].splitlines()
    # 0001 runs in the transaction opened before it, which goes on after it.
    assert first[0] == "BEGIN;" and first[-1] == "COMMIT;" and "CREATE TABLE items" in parts["0001"]
    assert "alembic_version (version_num VARCHAR" not in parts["0001"], "the preamble is no revision's"
    # 0002 starts inside that transaction, leaves it for the concurrent build, and opens another.
    assert second[0] == "BEGIN;" and second[-1] == "COMMIT;"
    index = second.index("CREATE INDEX CONCURRENTLY ix_items_sku ON items (sku);")
    assert "COMMIT;" in second[:index] and second[index + 1:].count("BEGIN;") == 1


def test_a_merge_revision_gets_its_own_part():
    script = "-- Running upgrade a1, b1 -> m1\n\nSELECT 1;\n"
    assert split_alembic_sql(script) == {"m1": "-- Running upgrade a1, b1 -> m1\n\nSELECT 1;\n"}


def test_each_line_of_sqlmigrate_output_belongs_to_the_operation_described_above_it():
    sql = ('BEGIN;\n--\n-- Add field code to product\n--\nALTER TABLE "p" ADD COLUMN "code" text;\n'
           '--\n-- Rename field price on product to amount\n--\nALTER TABLE "p"\n  RENAME COLUMN "price" TO "amount";\n'
           'COMMIT;\n')
    assert django_operation_at(sql, 4) == "Add field code to product"
    assert django_operation_at(sql, 8) == "Rename field price on product to amount"
    assert django_operation_at(sql, 0) == ""
    assert statement_at(sql, 8) == 'ALTER TABLE "p" RENAME COLUMN "price" TO "amount";'


@pytest.mark.parametrize(("image", "version"), [
    ("docker.io/library/postgres:17.6-bookworm", "17.6"),
    ("postgres:16", "16"),
    ("registry.example.com:5000/postgres:15.4-alpine@sha256:" + "a" * 64, "15.4"),
    ("postgres@sha256:" + "a" * 64, None),
])
def test_the_postgresql_version_of_a_local_stack_is_its_image_tag(image, version):
    assert image_pg_version(image) == version


def _migration(tmp_path: Path, name: str, text: str) -> Migration:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return Migration(name, path)


def test_a_waiver_with_a_reason_silences_exactly_its_rule_in_its_migration(tmp_path):
    waived = _migration(tmp_path, "m1", "# webstack: allow renaming-column -- release 7 reads `title` only\n")
    other = _migration(tmp_path, "m2", "")
    findings = [Finding(waived, "renaming-column", "squawk", "rename"),
                Finding(waived, "require-concurrent-index-creation", "squawk", "index"),
                Finding(other, "renaming-column", "squawk", "rename")]
    waivers = read_waivers(waived.path) + read_waivers(other.path)
    kept, silenced = apply_waivers(findings, [waived, other], waivers, lambda rule: True)
    assert [(f.migration.label, f.rule) for f in kept] == [("m1", "require-concurrent-index-creation"),
                                                           ("m2", "renaming-column")]
    assert [(w.reason, f.rule) for w, f in silenced] == [("release 7 reads `title` only", "renaming-column")]


@pytest.mark.parametrize(("marker", "problem"), [
    ("# webstack: allow renaming-column", "waiver-without-reason"),
    ("# webstack: allow renaming-column --   ", "waiver-without-reason"),
    ("# webstack: allow renaming-column because the old code is gone", "waiver-without-reason"),
    ("# webstack: allow renaming-colum -- typo", "waiver-unknown-rule"),
    ("# webstack: allow -- no rule", "waiver-unknown-rule"),
    ("# webstack: allow prefer-text-field -- the kit does not check it", "waiver-unknown-rule"),
    ("# webstack: allow ban-drop-table -- nothing is dropped here", "waiver-unused"),
])
def test_a_waiver_without_a_reason_a_rule_or_a_finding_is_itself_a_finding(tmp_path, marker, problem):
    migration = _migration(tmp_path, "m1", f"{marker}\nfrom alembic import op\n")
    rename = Finding(migration, "renaming-column", "squawk", "rename")
    known = {"renaming-column", "ban-drop-table", "prefer-text-field"}.__contains__
    kept, silenced = apply_waivers([rename], [migration], read_waivers(migration.path), known)
    assert silenced == [] or problem == "waiver-unused"
    rules = [f.rule for f in kept]
    assert problem in rules
    problem_finding = next(f for f in kept if f.rule == problem)
    assert problem_finding.line == 1 and problem_finding.migration == migration
    if problem != "waiver-unused":
        assert "renaming-column" in rules, "a waiver that is not valid waives nothing"


def test_a_second_waiver_of_the_same_rule_is_reported():
    migration = Migration("m1", Path("m1.py"))
    waivers = [Waiver(migration.path, 1, "renaming-column", "one"), Waiver(migration.path, 2, "renaming-column", "two")]
    kept, silenced = apply_waivers([Finding(migration, "renaming-column", "squawk", "x")], [migration], waivers,
                                   lambda rule: True)
    assert [f.rule for f in kept] == ["waiver-unused"] and kept[0].line == 2 and len(silenced) == 1


def test_a_linter_finding_squawk_also_reported_is_shown_once():
    m1, m2 = Migration("m1", Path("m1.py")), Migration("m2", Path("m2.py"))
    findings = [Finding(m1, "ban-drop-default", "squawk", "Add field code to product"),
                Finding(m1, "NOT_NULL", "django-migration-linter", "Add field code to product"),
                Finding(m2, "NOT_NULL", "django-migration-linter", "Alter field code on product")]
    assert [(f.migration.label, f.rule) for f in drop_covered(findings)] == [("m1", "ban-drop-default"),
                                                                            ("m2", "NOT_NULL")]


def test_every_rule_with_the_kit_s_advice_has_a_fix_for_each_framework():
    for rule, advice in ADVICE.items():
        assert advice.why and advice.django, rule
        if rule not in LINTER_COVERED_BY:  # the linter's own codes are Django's only
            assert advice.alembic, rule


def test_every_squawk_rule_the_kit_names_is_one_the_installed_squawk_knows(tmp_path):
    squawk = need_squawk()
    named = set(SQUAWK_EXCLUDED) | {r for rules in LINTER_COVERED_BY.values() for r in rules}
    named |= {rule for rule in ADVICE if re.fullmatch(r"[a-z-]+", rule) and rule not in SQUAWK_NOT_A_RULE
              and not rule.startswith(("waiver-", "migration-"))}
    assert squawk_knows(squawk, sorted(named), tmp_path) == named


# --- the reference apps ------------------------------------------------------------------------

def test_the_reference_fastapi_app_s_migrations_pass(capsys):
    need_alembic_app()
    status, output = lint(capsys, "fastapi-dev", "--app-dir", str(FASTAPI_APP))
    assert status == 0, output
    checked = int(re.search(r"(\d+) migration\(s\) checked", output).group(1))
    assert checked == len(list((FASTAPI_APP / "migrations" / "versions").glob("*.py")))
    assert "for PostgreSQL 17 (stack fastapi-dev's engine_version)" in output


def test_the_reference_django_app_s_migrations_pass(capsys):
    need_django_app()
    # Through the stack: its app.env names the settings module, its secrets get stand-ins.
    status, output = lint(capsys, "django-local", "--app-dir", str(DJANGO_APP))
    assert status == 0, output
    checked = int(re.search(r"(\d+) migration\(s\) checked", output).group(1))
    assert checked == len(list(DJANGO_APP.glob("*/migrations/0*.py")))
    assert "local_image" in output and "sqlmigrate on a scratch PostgreSQL" in output


# --- unsafe migrations -----------------------------------------------------------------------------

def test_an_unsafe_alembic_migration_is_reported_with_the_operation_and_the_fix(capsys, tmp_path):
    need_alembic_app()
    app = copy_app(FASTAPI_APP, tmp_path)
    add_alembic_revision(app, "9001", """\
    op.create_index("ix_items_name", "items", ["name"])
    op.alter_column("items", "sku", nullable=False)
    op.alter_column("items", "description", new_column_name="details")
    op.add_column("items", sa.Column("token", sa.Uuid(), server_default=sa.text("gen_random_uuid()"),
                                     nullable=True))""")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(APP_PYTHON))
    assert status == 1, output
    assert "revision 9001  (" in output and "9001_added.py" in output
    expected = {
        "require-concurrent-index-creation": ("CREATE INDEX ix_items_name ON items (name);",
                                              "postgresql_concurrently=True", "autocommit_block()"),
        "adding-not-nullable-field": ("ALTER TABLE items ALTER COLUMN sku SET NOT NULL;", "NOT VALID",
                                      "VALIDATE CONSTRAINT"),
        "renaming-column": ("ALTER TABLE items RENAME description TO details;", "two releases"),
        "adding-field-with-default": ("gen_random_uuid()", "backfill in batches"),
    }
    for rule, fragments in expected.items():
        text = finding(output, rule)
        for fragment in fragments:
            assert fragment in text, f"{rule}: {fragment!r} missing in\n{text}"
        assert "why: " in text and "fix: " in text
    # The reference migrations before it are not reported.
    assert "revision 0002  (" not in output


def test_an_unsafe_django_migration_is_reported_with_the_operation_and_the_fix(capsys, tmp_path):
    need_django_app()
    app = copy_app(DJANGO_APP, tmp_path)
    add_django_migration(app, "0901_unsafe", """\
        migrations.AddField("product", "code", models.CharField(max_length=20, default="none")),
        migrations.AddIndex("product", models.Index(fields=["name"], name="product_name_idx")),
        migrations.RenameField("product", "price", "amount"),
        migrations.AddField("product", "note", models.TextField(null=True)),
        migrations.AlterField("product", "note", models.TextField(null=False)),
        migrations.RunPython(fill, migrations.RunPython.noop),""", prelude='''

def fill(apps, schema_editor):
    from catalog.models import Product
    Product.objects.update(name="x")
''')
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(DJANGO_PYTHON),
                          "--env", "DJANGO_SECRET_KEY=lint-test-only")
    assert status == 1, output
    assert "catalog 0901_unsafe  (" in output
    expected = {
        "ban-drop-default": ("in: Add field code to product", 'DROP DEFAULT', "db_default="),
        "require-concurrent-index-creation": ("in: Create index product_name_idx on field(s) name of model product",
                                              'CREATE INDEX "product_name_idx"', "AddIndexConcurrently",
                                              "atomic = False"),
        "renaming-column": ("in: Rename field price on product to amount", 'RENAME COLUMN "price" TO "amount"',
                            "db_column="),
        "adding-not-nullable-field": ("in: Alter field note on product", "SET NOT NULL", "NOT VALID"),
        "RUNPYTHON_MODEL_IMPORT": ("in: RunPython(fill)", "apps.get_model("),
    }
    for rule, fragments in expected.items():
        text = finding(output, rule)
        for fragment in fragments:
            assert fragment in text, f"{rule}: {fragment!r} missing in\n{text}"
    # django-migration-linter's NOT NULL finding is the DROP DEFAULT squawk reported: shown once.
    assert "NOT_NULL [" not in output


def test_the_safe_rewrites_the_fixes_name_pass(capsys, tmp_path):
    need_django_app()
    app = copy_app(DJANGO_APP, tmp_path)
    add_django_migration(app, "0901_safe_index", """\
        AddIndexConcurrently("product", models.Index(fields=["name"], name="product_name_idx")),""",
                         prelude="from django.contrib.postgres.operations import AddIndexConcurrently\n", atomic=False)
    add_django_migration(app, "0902_safe_column", """\
        migrations.AddField("product", "code", models.CharField(max_length=20, db_default="none")),""")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(DJANGO_PYTHON),
                          "--env", "DJANGO_SECRET_KEY=lint-test-only")
    assert status == 0, output
    assert "catalog 0901_safe_index" not in output and re.search(r"no finding in \d+ migration", output)


def test_the_safe_alembic_rewrites_the_fixes_name_pass(capsys, tmp_path):
    need_alembic_app()
    app = copy_app(FASTAPI_APP, tmp_path)
    add_alembic_revision(app, "9001", """\
    op.add_column("items", sa.Column("colour", sa.Text(), nullable=True))
    op.create_check_constraint("ck_items_colour_not_null", "items", "colour IS NOT NULL",
                               postgresql_not_valid=True)
    with op.get_context().autocommit_block():
        op.create_index("ix_items_name", "items", ["name"], postgresql_concurrently=True)""")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(APP_PYTHON))
    assert status == 0, output


# --- waivers, end to end ------------------------------------------------------------------------

def test_a_waived_finding_is_listed_with_its_reason_and_the_others_still_fail(capsys, tmp_path):
    need_alembic_app()
    app = copy_app(FASTAPI_APP, tmp_path)
    add_alembic_revision(app, "9001", """\
    op.create_index("ix_items_name", "items", ["name"])
    op.alter_column("items", "description", new_column_name="details")""",
                         header="# webstack: allow renaming-column -- release 12 on never reads items.description\n")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(APP_PYTHON))
    assert status == 1, output
    assert "renaming-column [" not in output
    assert re.search(r"waived \(reviewed in the migration\):\n  revision 9001: renaming-column in .*RENAME description "
                     r"TO details; -- release 12 on never reads items.description", output), output
    finding(output, "require-concurrent-index-creation")


def test_a_waiver_without_a_reason_fails_and_waives_nothing(capsys, tmp_path):
    need_alembic_app()
    app = copy_app(FASTAPI_APP, tmp_path)
    add_alembic_revision(app, "9001", """\
    op.alter_column("items", "description", new_column_name="details")""",
                         header="# webstack: allow renaming-column\n")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(APP_PYTHON))
    assert status == 1, output
    assert "gives no reason after '--'" in finding(output, "waiver-without-reason")
    finding(output, "renaming-column")


def test_only_the_migrations_changed_since_a_commit_are_linted(capsys, tmp_path):
    need_alembic_app()
    app = copy_app(FASTAPI_APP, tmp_path)
    add_alembic_revision(app, "9001", '    op.create_index("ix_a", "items", ["name"])')

    def git(*argv: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv], cwd=app, check=True,
                       capture_output=True, timeout=60)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    # Committed on the branch, and one not committed yet: both are the change under review.
    add_alembic_revision(app, "9002", '    op.create_index("ix_b", "items", ["name"])')
    git("add", "-A")
    git("commit", "-q", "-m", "branch")
    add_alembic_revision(app, "9003", '    op.create_index("ix_c", "items", ["name"])')
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(APP_PYTHON), "--since", "HEAD~1")
    assert status == 1, output
    assert "2 migration(s) checked (changed since HEAD~1)" in output
    assert "revision 9002  (" in output and "revision 9003  (" in output and "revision 9001" not in output


# --- what the lint refuses to do ------------------------------------------------------------------

def test_a_django_app_whose_settings_ignore_the_kit_s_database_is_not_migrated(capsys, tmp_path):
    need_django_app()
    app = copy_app(DJANGO_APP, tmp_path)
    sqlite = tmp_path / "db.sqlite3"
    (app / "shop" / "sqlite_settings.py").write_text(
        "from shop.settings import *  # noqa: F403\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': '{sqlite}'}}}}\n")
    status, output = lint(capsys, "--app-dir", str(app), "--python", str(DJANGO_PYTHON), "--settings",
                          "shop.sqlite_settings", "--env", "DJANGO_SECRET_KEY=lint-test-only")
    assert status == 2, output
    assert "not the scratch PostgreSQL the lint started" in output and "nothing was migrated" in output
    assert not sqlite.exists()


def test_bad_flags_are_refused_with_the_fix(capsys, tmp_path):
    status, output = lint(capsys, "--app-dir", str(tmp_path))
    assert status == 2 and "neither manage.py (Django) nor alembic.ini (Alembic)" in output
    status, output = lint(capsys, "fastapi-dev", "--app-dir", str(DJANGO_APP))
    assert status == 2 and "looks like a django app" in output
    status, output = lint(capsys, "--app-dir", str(FASTAPI_APP), "--pg-version", "latest")
    assert status == 2 and "--pg-version 'latest'" in output
    status, output = lint(capsys, "no-such-stack", "--app-dir", str(FASTAPI_APP))
    assert status == 2 and "no stack file Pulumi.no-such-stack.yaml" in output
