"""The SQL side of the lint: Alembic's offline script split per revision, the statement and the
operation at a line, and squawk run on one file per migration."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.lint_migrations.rules import SQUAWK_EXCLUDED

# squawk reads the whole SQL of every migration at once; thousands of files take seconds.
SQUAWK_TIMEOUT_S = 300

# `-- Running upgrade 0001 -> 0002` (and `-- Running upgrade a, b -> c` for a merge): Alembic's
# offline mode writes one before the SQL of each revision.
_REVISION_HEADER = re.compile(r"^-- Running upgrade .*-> (?P<rev>\S+)\s*$")
# Alembic's own transaction statements, each alone on a line as it writes them (an `END;` in a
# function's body is not one).
_TRANSACTION = re.compile(r"^(?P<word>BEGIN|COMMIT|ROLLBACK);\s*$")


def split_alembic_sql(script: str) -> dict[str, str]:
    """{revision: its SQL} from `alembic upgrade ... --sql`.

    Each revision's part is made to stand alone as it runs: it starts with BEGIN when the
    revision runs inside a transaction opened before it (env.py may use one transaction for all
    revisions, or one per revision) and ends with COMMIT when that transaction goes on after it.
    squawk then sees what runs in a transaction (a concurrent index must not) and what doesn't."""
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_transaction = False
    for line in script.splitlines():
        header = _REVISION_HEADER.match(line)
        if header:
            if current is not None and in_transaction:
                current.append("COMMIT;")
            rev = header.group("rev")
            current = parts.setdefault(rev, [])
            if in_transaction:
                current.append("BEGIN;")
            current.append(line)
            continue
        word = _TRANSACTION.match(line)
        if word:
            in_transaction = word.group("word") == "BEGIN"
        if current is not None:
            current.append(line)
    if current is not None and in_transaction:
        current.append("COMMIT;")
    return {rev: "\n".join(lines).strip() + "\n" for rev, lines in parts.items()}


def statement_at(sql: str, line: int) -> str:
    """The statement that starts on (or spans) 0-based `line`, on one line, shortened for a report."""
    lines = sql.splitlines()
    if not 0 <= line < len(lines):
        return ""
    text = []
    for candidate in lines[line:]:
        text.append(candidate.strip())
        if candidate.rstrip().endswith(";"):
            break
    flat = re.sub(r"\s+", " ", " ".join(text)).strip()
    return flat if len(flat) <= 200 else flat[:197] + "..."


def django_operation_at(sql: str, line: int) -> str:
    """The operation a line of `sqlmigrate` output belongs to: Django writes each operation's
    description as a comment (`--` / `-- Add field sku to item` / `--`) before its SQL."""
    lines = sql.splitlines()
    found = ""
    for index, text in enumerate(lines[:line + 1]):
        if (text.startswith("-- ") and index > 0 and lines[index - 1].strip() == "--"
                and index + 1 < len(lines) and lines[index + 1].strip() == "--"):
            found = text[3:].strip()
    return found


def find_squawk(given: Path | None = None) -> Path | None:
    """squawk: the one given, else the one installed next to this interpreter (requirements-dev.txt
    puts squawk-cli in .venv), else on PATH."""
    if given is not None:
        return given if given.is_file() else None
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


@dataclass(frozen=True)
class SquawkViolation:
    file: Path
    line: int  # 0-based, as squawk reports it
    rule: str
    message: str
    help: str


def _empty_config(workdir: Path) -> Path:
    """An empty config file: it stands in for any .squawk.toml squawk would find from the working
    directory up, so the rules are the kit's wherever the command runs."""
    config = workdir / "squawk.toml"
    config.write_text("")
    return config


def run_squawk(squawk: Path, files: Sequence[Path], pg_version: str, workdir: Path) -> list[SquawkViolation]:
    """squawk on `files`, with the kit's rule set and PostgreSQL version."""
    if not files:
        return []
    argv = [str(squawk), "--config", str(_empty_config(workdir)), "--reporter", "json", "--pg-version", pg_version,
            "--exclude", ",".join(sorted(SQUAWK_EXCLUDED)), *map(str, files)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=SQUAWK_TIMEOUT_S, cwd=workdir,
                            stdin=subprocess.DEVNULL)
    # 0: nothing found, 1: findings; anything else (2: a bad argument) is squawk failing.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"squawk failed (exit {result.returncode}): {result.stderr.strip() or result.stdout}")
    try:
        reported = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise RuntimeError(f"squawk printed no JSON report: {result.stdout[:500]}{result.stderr[:500]}") from None
    return [SquawkViolation(file=Path(v["file"]) if Path(v["file"]).is_absolute() else workdir / v["file"],
                            line=int(v["line"]), rule=v["rule_name"], message=v.get("message") or "",
                            help=v.get("help") or "") for v in reported]


def squawk_knows(squawk: Path, rules: Sequence[str], workdir: Path) -> set[str]:
    """Which of `rules` are squawk rule names (squawk refuses an unknown name in --exclude)."""
    empty = workdir / "empty.sql"
    empty.write_text("")
    known = set()
    for rule in rules:
        result = subprocess.run([str(squawk), "--config", str(_empty_config(workdir)), "--exclude", rule,
                                 str(empty)], capture_output=True, text=True, timeout=60, cwd=workdir,
                                stdin=subprocess.DEVNULL)
        if result.returncode == 0:
            known.add(rule)
    return known


def squawk_version(squawk: Path) -> str:
    result = subprocess.run([str(squawk), "--version"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    return result.stdout.strip()
