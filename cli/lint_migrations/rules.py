"""What the migration lint checks, what each finding means, its safe rewrite, and waivers.

Two tools look at every migration; the kit reports them as one list:
- squawk reads the SQL a migration runs and knows PostgreSQL's locks (which statement blocks reads
  or writes, which rewrites or scans a table);
- django-migration-linter (Django only) also reads the migration's Python (a data migration that
  imports a model class) and flags what breaks the release that is still serving.
Where both flag the same thing, squawk's finding is the one shown.

A rule id is squawk's rule name (`require-concurrent-index-creation`) or the linter's code
(`RUNPYTHON_MODEL_IMPORT`): the report prints it, a waiver names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# --- squawk: which of its default rules the kit turns off, and why ----------------------------

# Everything else squawk checks by default stays on (a newer squawk's new rules too).
SQUAWK_EXCLUDED: dict[str, str] = {
    "require-lock-timeout": "the release Job sets lock_timeout on its connection (PGOPTIONS), so no migration "
                            "needs its own SET",
    "require-statement-timeout": "the release Job sets statement_timeout on its connection (PGOPTIONS)",
    "prefer-robust-stmts": "Django's concurrent index operations cannot say IF NOT EXISTS; what a rerun after a "
                           "failed concurrent build needs is in the fix of require-concurrent-index-creation",
    "prefer-text-field": "schema style, not a lock: every Django CharField is varchar(n); changing its length later "
                         "is what changing-column-type checks",
    "prefer-bigint-over-int": "schema style, not a lock",
    "prefer-bigint-over-smallint": "schema style, not a lock",
    "prefer-identity": "schema style, not a lock",
    "prefer-timestamptz": "schema style, not a lock",
    "ban-char-field": "schema style, not a lock",
    "require-enum-value-ordering": "the order of an enum's values, not a lock or the running release",
    "ban-drop-not-null": "making a column nullable takes a brief lock and no scan, and it is the expand step "
                         "before a column is dropped (the new release stops writing it)",
}

# What squawk reports without it being a rule (--exclude refuses the name): SQL it cannot parse.
SQUAWK_NOT_A_RULE = ("syntax-error",)

# --- django-migration-linter: its codes the kit reports, and squawk's rules that cover each ------

# A linter finding is left out when squawk reported one of these rules on the same migration: it
# is the same problem, and squawk's says which statement.
LINTER_COVERED_BY: dict[str, tuple[str, ...]] = {
    "RENAME_TABLE": ("renaming-table",),
    "RENAME_COLUMN": ("renaming-column",),
    "DROP_COLUMN": ("ban-drop-column",),
    "DROP_TABLE": ("ban-drop-table",),
    "ALTER_COLUMN": ("changing-column-type",),
    "ADD_UNIQUE": ("disallowed-unique-constraint", "require-concurrent-index-creation"),
    # Django's AddField(default=...) adds the column with the default and then drops it: squawk
    # sees the DROP DEFAULT, the linter a NOT NULL column left without one.
    "NOT_NULL": ("adding-required-field", "adding-not-nullable-field", "ban-drop-default"),
    "CREATE_INDEX": ("require-concurrent-index-creation",),
    "CREATE_INDEX_EXCLUSIVE": ("require-concurrent-index-creation",),
    "DROP_INDEX": ("require-concurrent-index-deletion",),
    "REINDEX": ("require-concurrent-reindex",),
    "RUNPYTHON_MODEL_IMPORT": (),
}
# The linter's other codes are about reversing a migration (RUNPYTHON_REVERSIBLE, RUNSQL_REVERSIBLE)
# or naming (RUNPYTHON_ARGS_NAMING_CONVENTION, RUNPYTHON_MODEL_VARIABLE_NAME): a release rolls
# forward, and neither blocks traffic nor breaks the running release.
LINTER_REPORTED = frozenset(LINTER_COVERED_BY)


# --- what each finding means and how to rewrite it ---------------------------------------------

@dataclass(frozen=True)
class Advice:
    why: str
    django: str
    alembic: str

    def fix(self, framework: str) -> str:
        return self.django if framework == "django" else self.alembic


def _same(why: str, fix: str) -> Advice:
    return Advice(why, fix, fix)


_CONTRACT_DJANGO = ("a contract step: ship it in the release after the one that stopped using it "
                    "(release N removes it from the models with SeparateDatabaseAndState(state_operations=[...]), "
                    "release N+1 runs this), then waive this rule here with that reason")
_CONTRACT_ALEMBIC = ("a contract step: ship it in the release after the one that stopped using it, then waive "
                     "this rule here with that reason")

ADVICE: dict[str, Advice] = {
    "require-concurrent-index-creation": Advice(
        "CREATE INDEX blocks every write to the table until the build ends (minutes on a big table).",
        "AddIndexConcurrently (django.contrib.postgres.operations) in a migration of its own with atomic = False; "
        "a build that fails leaves an INVALID index: drop it (RemoveIndexConcurrently) before the rerun",
        "op.create_index(..., postgresql_concurrently=True) inside `with op.get_context().autocommit_block():`; "
        "a build that fails leaves an INVALID index: drop it before the rerun"),
    "require-concurrent-index-deletion": Advice(
        "DROP INDEX takes an ACCESS EXCLUSIVE lock: every read and write of the table waits for it.",
        "RemoveIndexConcurrently (django.contrib.postgres.operations) in a migration of its own with atomic = False",
        "op.drop_index(..., postgresql_concurrently=True) inside `with op.get_context().autocommit_block():`"),
    "require-concurrent-reindex": _same(
        "REINDEX blocks writes (and reads that use the index) until it ends.",
        "REINDEX ... CONCURRENTLY, outside a transaction"),
    "ban-concurrent-index-creation-in-transaction": Advice(
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction: the migration fails.",
        "atomic = False on the migration, with the concurrent operation alone in it",
        "run it inside `with op.get_context().autocommit_block():`"),
    "adding-field-with-default": Advice(
        "a volatile default (now(), random(), gen_random_uuid(), ...) rewrites the whole table under an "
        "ACCESS EXCLUSIVE lock.",
        "AddField with null=True and no default, fill existing rows in batches (RunPython or a job), then the "
        "NOT NULL steps; new rows get the value from the model (default=)",
        "add the column nullable without server_default, backfill in batches, then "
        "op.alter_column(server_default=...) for new rows (no rewrite) and the NOT NULL steps"),
    "adding-required-field": Advice(
        "ADD COLUMN ... NOT NULL without a default fails on a table with rows, and the running release's INSERTs "
        "(which do not name the column) fail.",
        "give the field a constant db_default= (PostgreSQL 11+ adds it without a rewrite, and fills it in for the "
        "running release), or add it null=True and make it NOT NULL in a later release",
        "server_default=<a constant> (PostgreSQL 11+ adds it without a rewrite), or nullable now and NOT NULL in "
        "a later release"),
    "adding-not-nullable-field": Advice(
        "SET NOT NULL scans the whole table while holding an ACCESS EXCLUSIVE lock.",
        "RunSQL: ADD CONSTRAINT <c> CHECK (<col> IS NOT NULL) NOT VALID; in a later migration VALIDATE CONSTRAINT "
        "<c>, then SET NOT NULL (PostgreSQL 12+ trusts the check: no scan) and DROP CONSTRAINT <c>, with "
        "state_operations=[AlterField(..., null=False)]",
        "op.execute: ADD CONSTRAINT <c> CHECK (<col> IS NOT NULL) NOT VALID; in a later migration VALIDATE "
        "CONSTRAINT <c>, then op.alter_column(nullable=False) (PostgreSQL 12+ trusts the check: no scan) and "
        "drop the check"),
    "ban-drop-default": Advice(
        "the running release's INSERTs leave the column out and rely on the database's default: without it they "
        "fail (NOT NULL) or store NULL.",
        "db_default= instead of default= (Django adds default= to the table only to fill the existing rows, then "
        "drops it)",
        "keep the server_default until no running release inserts without the column"),
    "constraint-missing-not-valid": Advice(
        "adding a constraint checks every row while it blocks writes to the table (and VALIDATE in the same "
        "transaction keeps that lock).",
        "a CHECK or FOREIGN KEY: RunSQL('ALTER TABLE ... ADD CONSTRAINT ... NOT VALID', "
        "state_operations=[AddConstraint(...)]), then RunSQL('ALTER TABLE ... VALIDATE CONSTRAINT ...') in a later "
        "migration (it lets writes go on); a UNIQUE one: see disallowed-unique-constraint",
        "a CHECK or FOREIGN KEY: op.create_check_constraint / op.create_foreign_key(..., postgresql_not_valid=True), "
        "then op.execute('ALTER TABLE ... VALIDATE CONSTRAINT ...') in a later migration (it lets writes go on); a "
        "UNIQUE one: see disallowed-unique-constraint"),
    "adding-foreign-key-constraint": Advice(
        "a new foreign key scans the table and blocks writes to both tables (SHARE ROW EXCLUSIVE) meanwhile.",
        "ForeignKey(..., db_constraint=False) first; then RunSQL ADD CONSTRAINT ... NOT VALID and, in a later "
        "migration, VALIDATE CONSTRAINT",
        "op.create_foreign_key(..., postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later migration"),
    "changing-column-type": _same(
        "a type change rewrites the table under an ACCESS EXCLUSIVE lock, and the running release still reads and "
        "writes the old type.",
        "expand/contract: add a column of the new type, write both, backfill in batches, move the reads, drop the "
        "old column in a later release"),
    "adding-serial-primary-key-field": _same(
        "adding a primary key builds its index while the table is locked.",
        "CREATE UNIQUE INDEX CONCURRENTLY in a migration of its own, then ADD CONSTRAINT ... PRIMARY KEY USING "
        "INDEX"),
    "disallowed-unique-constraint": Advice(
        "ADD CONSTRAINT ... UNIQUE builds its index under an ACCESS EXCLUSIVE lock.",
        "AddIndexConcurrently of a unique index (atomic = False), then RunSQL('ALTER TABLE ... ADD CONSTRAINT ... "
        "UNIQUE USING INDEX ...', state_operations=[AddConstraint(UniqueConstraint(...))])",
        "op.create_index(..., unique=True, postgresql_concurrently=True) in an autocommit_block(), then "
        "op.execute('ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX ...')"),
    "renaming-column": Advice(
        "the running release still reads and writes the old name: its queries fail from the moment this commits.",
        "rename the model field only and keep the column (db_column='<old name>': no SQL at all), or "
        "expand/contract over two releases",
        "two releases: add the new column and write both (backfill), then move the reads and drop the old column"),
    "renaming-table": Advice(
        "the running release still queries the old name: its queries fail from the moment this commits.",
        "rename the model only and keep the table (Meta.db_table = '<old name>': no SQL at all)",
        "two releases: the new table (or a view of the new name over the old one), then drop the old one"),
    "ban-drop-column": Advice(
        "the running release still selects the column (Django selects every field of a model): its queries "
        "fail.", _CONTRACT_DJANGO, _CONTRACT_ALEMBIC),
    "ban-drop-table": Advice(
        "the running release may still query the table: its queries fail.", _CONTRACT_DJANGO, _CONTRACT_ALEMBIC),
    "transaction-nesting": Advice(
        "BEGIN or COMMIT written in a migration ends the transaction the migration tool opened.",
        "remove them; atomic = False on a migration whose statements cannot run in a transaction",
        "remove them; use `with op.get_context().autocommit_block():` for statements outside a transaction"),
    "ban-uncommitted-transaction": _same(
        "a transaction opened in the migration is never committed.",
        "remove the BEGIN; the migration tool manages the transaction"),
    "syntax-error": _same(
        "squawk could not parse this SQL, so nothing in it was checked.",
        "review the statement by hand, then waive this rule here with what you checked"),
    "RUNPYTHON_MODEL_IMPORT": Advice(
        "a data migration that imports a model class runs with today's model, not the schema at this migration.",
        "apps.get_model('<app>', '<Model>') inside the function", ""),
    "migration-not-applied": _same(
        "the migration could not be applied to the scratch database, so the SQL of the ones after it could not "
        "be rendered.", "make it apply to an empty database (as it must for a new environment)"),
    "waiver-without-reason": _same(
        "a waiver must say why the operation is safe here; a reviewer approves that reason.",
        "# webstack: allow <rule> -- <why it is safe here>"),
    "waiver-unknown-rule": _same(
        "the waiver names no rule the lint checks, so it waives nothing (a typo?).",
        "name a rule as the report prints it (squawk's rule name or the linter's code)"),
    "waiver-unused": _same(
        "nothing in this migration breaks the rule any more: a stale waiver misleads the next reviewer.",
        "remove the waiver"),
}
# The rules whose finding is "this removes or renames something the running release may use".
_CONTRACT_RULE = re.compile(r"^(ban-drop-.*|renaming-object|ban-set-schema|ban-drop-constraint)$")


def advice(rule: str, framework: str, tool_message: str = "", tool_help: str = "") -> tuple[str, str]:
    """(why, fix) of a finding: the kit's own text, or the tool's for a rule the kit has none for."""
    if rule in LINTER_COVERED_BY and rule not in ADVICE and LINTER_COVERED_BY[rule]:
        rule = LINTER_COVERED_BY[rule][0]
    if rule in ADVICE:
        found = ADVICE[rule]
        return found.why, found.fix(framework) or found.django
    if _CONTRACT_RULE.match(rule):
        fix = _CONTRACT_DJANGO if framework == "django" else _CONTRACT_ALEMBIC
        return tool_message or "the running release may still use what this removes or renames.", fix
    return tool_message, tool_help or f"see https://squawkhq.com/docs/{rule}"


# --- findings -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Migration:
    """One migration as the lint sees it."""

    label: str  # "catalog 0002_product_in_stock" (Django), "revision 0002" (Alembic)
    path: Path  # its file, where waivers are read
    sql: str = ""  # what it runs, as the framework renders it


@dataclass(frozen=True)
class Finding:
    migration: Migration
    rule: str
    tool: str  # squawk | django-migration-linter | webstack
    operation: str  # Django's description of the operation, or the statement
    statement: str = ""  # the SQL statement, when the finding has one
    message: str = ""  # the tool's own words
    help: str = ""  # the tool's own suggestion
    line: int | None = None  # 1-based, in the migration's file (waiver findings)


def drop_covered(findings: Sequence[Finding]) -> list[Finding]:
    """Without linter findings that squawk already reported on the same migration."""
    squawk_rules = {(f.migration.path, f.rule) for f in findings if f.tool == "squawk"}
    return [f for f in findings
            if not (f.tool == "django-migration-linter"
                    and any((f.migration.path, r) in squawk_rules for r in LINTER_COVERED_BY.get(f.rule, ())))]


# --- waivers ------------------------------------------------------------------------------------

# `# webstack: allow <rule> -- <reason>`, on a line of its own or after code, anywhere in the file.
WAIVER = re.compile(r"#\s*webstack:\s*allow\b(?P<rest>.*)$")


@dataclass(frozen=True)
class Waiver:
    path: Path
    line: int  # 1-based
    rule: str
    reason: str


def read_waivers(path: Path) -> list[Waiver]:
    """Every waiver marker in a migration file, as written (checked by `apply_waivers`)."""
    waivers = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = WAIVER.search(text)
        if not match:
            continue
        named, separator, reason = match.group("rest").partition("--")
        words = named.split()
        # Words between the rule and `--` (or no `--` at all) are a reason in the wrong place: the
        # waiver then has none, and says so.
        reason = reason.strip() if separator and len(words) == 1 else ""
        waivers.append(Waiver(path, number, words[0] if words else "", reason))
    return waivers


def apply_waivers(findings: Sequence[Finding], migrations: Iterable[Migration], waivers: Sequence[Waiver],
                  known_rule: Callable[[str], bool]) -> tuple[list[Finding], list[tuple[Waiver, Finding]]]:
    """(what is left to report, (waiver, finding) pairs it silenced).

    A waiver silences exactly the findings of its rule in its own migration. A waiver without a
    reason, naming no rule the lint checks, or matching nothing is itself a finding: a waiver is
    a reviewed decision, so it must say why and must still apply."""
    by_path = {m.path: m for m in migrations}
    valid: dict[tuple[Path, str], Waiver] = {}
    problems: list[Finding] = []
    for waiver in waivers:
        migration = by_path[waiver.path]
        shown = f"# webstack: allow {waiver.rule}".rstrip()
        if waiver.rule in SQUAWK_EXCLUDED:
            problems.append(Finding(migration, "waiver-unknown-rule", "webstack", shown, line=waiver.line,
                                    message=f"the kit does not check {waiver.rule}: "
                                            f"{SQUAWK_EXCLUDED[waiver.rule]}"))
        elif not waiver.rule or not known_rule(waiver.rule):
            problems.append(Finding(migration, "waiver-unknown-rule", "webstack", shown, line=waiver.line,
                                    message=f"{waiver.rule!r} is not a rule the lint checks" if waiver.rule
                                    else "the waiver names no rule"))
        elif not waiver.reason:
            problems.append(Finding(migration, "waiver-without-reason", "webstack", shown, line=waiver.line,
                                    message=f"the waiver of {waiver.rule} gives no reason after '--'"))
        elif (waiver.path, waiver.rule) in valid:
            problems.append(Finding(migration, "waiver-unused", "webstack", shown, line=waiver.line,
                                    message=f"{waiver.rule} is waived already, on line "
                                            f"{valid[(waiver.path, waiver.rule)].line}"))
        else:
            valid[(waiver.path, waiver.rule)] = waiver
    kept: list[Finding] = []
    silenced: list[tuple[Waiver, Finding]] = []
    for finding in findings:
        waiver = valid.get((finding.migration.path, finding.rule))
        if waiver is None:
            kept.append(finding)
        else:
            silenced.append((waiver, finding))
    used = {id(w) for w, _ in silenced}
    for waiver in valid.values():
        if id(waiver) not in used:
            problems.append(Finding(by_path[waiver.path], "waiver-unused", "webstack",
                                    f"# webstack: allow {waiver.rule}", line=waiver.line,
                                    message=f"no {waiver.rule} finding in this migration"))
    return kept + problems, silenced


