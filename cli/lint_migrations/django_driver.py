"""Runs in the Django app's own interpreter (`python -c <this file>`, from the app's folder), never
imported by the kit: it may use only the standard library, Django and django-migration-linter.

    python -c "$(cat django_driver.py)" OUT.json SELECTED.json

It walks every migration in the order `migrate` applies them to an empty database, and for each of
the app's own migrations that SELECTED.json lists (null: all of them) renders its SQL with
`sqlmigrate` and runs django-migration-linter's checks on it; then it applies the migration, so
the next one's SQL is rendered against the schema it will really meet. OUT.json gets
{"migrations": [...], "error": ...}.

The database must be the scratch one the kit started: the driver checks that the settings point
at it (DATABASE_HOST/PORT/NAME as the kit passes them) before it migrates anything.
"""

import io
import json
import os
import sys
import traceback


def _path_of(migration):
    return os.path.realpath(sys.modules[type(migration).__module__].__file__)


def _blocks(sql_lines):
    """[(description, lines)] of sqlmigrate output: each operation's SQL after its comment."""
    blocks, description, current = [], "", []
    for index, line in enumerate(sql_lines):
        is_title = (line.startswith("-- ") and index > 0 and sql_lines[index - 1].strip() == "--"
                    and index + 1 < len(sql_lines) and sql_lines[index + 1].strip() == "--")
        if is_title:
            if current:
                blocks.append((description, current))
            description, current = line[3:].strip(), []
        elif line.strip() != "--":
            current.append(line)
    if current:
        blocks.append((description, current))
    return blocks


def _data_issues(linter, migration):
    """django-migration-linter's checks of the migration's RunPython and RunSQL operations, each
    issue with its operation (as its analyse_data_migration runs them, one by one)."""
    from django.db.migrations import RunPython, RunSQL

    found = []
    for operation in migration.operations:
        if isinstance(operation, RunPython):
            errors, _ignored, warnings = linter.lint_runpython(operation)
            code = linter.discover_function(operation.code)
            name = f"RunPython({getattr(code, '__name__', 'function')})"
        elif isinstance(operation, RunSQL):
            errors, _ignored, warnings = linter.lint_runsql(operation)
            name = "RunSQL"
        else:
            continue
        found += [(issue, name) for issue in [*errors, *warnings]]
    return found


def _linter_issues(linter, analyser, analyse, migration, sql_lines):
    """django-migration-linter's errors and warnings on one migration, each with the operation it
    came from when one operation alone shows it (a check across operations names none)."""
    errors, _ignored, warnings = analyse(analyser, sql_lines, [])
    blocks = _blocks(sql_lines)
    found = [{"code": issue.code, "message": issue.message, "table": issue.table, "column": issue.column,
              "operation": name} for issue, name in _data_issues(linter, migration)]
    for issue in [*errors, *warnings]:
        operation = ""
        for description, lines in blocks:
            block_errors, _i, block_warnings = analyse(analyser, lines, [])
            if any(i.code == issue.code and i.table == issue.table and i.column == issue.column
                   for i in [*block_errors, *block_warnings]):
                operation = description
                break
        found.append({"code": issue.code, "message": issue.message, "table": issue.table,
                      "column": issue.column, "operation": operation})
    return found


def main(out_path, selected_path):
    result = {"migrations": [], "error": None}
    try:
        _run(result, selected_path)
    except Exception:  # noqa: BLE001 - reported to the kit, which says what failed
        result["error"] = traceback.format_exc()
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


def _run(result, selected_path):
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    try:
        from django_migration_linter.migration_linter import MigrationLinter
        from django_migration_linter.sql_analyser import PostgresqlAnalyser
        from django_migration_linter.sql_analyser.analyser import analyse_sql_statements
    except ImportError as exc:
        result["error"] = f"django-migration-linter is not installed in {sys.executable}: {exc}"
        result["missing_linter"] = True
        return

    connection = connections[DEFAULT_DB_ALIAS]
    expected = (os.environ["DATABASE_HOST"], os.environ["DATABASE_PORT"], os.environ["DATABASE_NAME"])
    given = connection.settings_dict
    actual = (given.get("HOST") or "", str(given.get("PORT") or ""), given.get("NAME") or "")
    if connection.vendor != "postgresql" or actual != expected:
        result["error"] = (f"DATABASES['default'] is {connection.vendor} at host={actual[0]!r} port={actual[1]!r} "
                           f"name={actual[2]!r}, not the scratch PostgreSQL the lint started at {expected}: the "
                           "settings must read DATABASE_HOST, DATABASE_PORT and DATABASE_NAME (or the URL) as the "
                           "kit passes them; nothing was migrated")
        result["wrong_database"] = True
        return

    with open(selected_path, encoding="utf-8") as f:
        selected = json.load(f)
    app_dir = os.path.realpath(os.getcwd()) + os.sep
    wanted = None if selected is None else {os.path.realpath(p) for p in selected}

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    linter = MigrationLinter(None, no_cache=True, analyser_string="postgresql", no_output=True)
    state = None
    for migration, _backwards in plan:
        path = _path_of(migration)
        # The app's own migrations: those of installed packages (django.contrib, ...) are applied
        # but not linted, as they are not the app's to change.
        if path.startswith(app_dir) and (wanted is None or path in wanted):
            sql = call_command("sqlmigrate", migration.app_label, migration.name, stdout=io.StringIO()) or ""
            lines = sql.splitlines()
            result["migrations"].append({
                "app_label": migration.app_label, "name": migration.name, "path": path,
                "atomic": migration.atomic, "sql": sql + ("\n" if sql else ""),
                "issues": _linter_issues(linter, PostgresqlAnalyser, analyse_sql_statements, migration, lines),
            })
        try:
            state = executor.migrate(None, plan=[(migration, False)], state=state)
        except Exception:  # noqa: BLE001 - the kit reports which migration did not apply
            result["not_applied"] = {"app_label": migration.app_label, "name": migration.name, "path": path,
                                     "error": traceback.format_exc(limit=3)}
            return


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
