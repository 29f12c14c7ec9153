"""The kit's command line.

    python -m cli render [STACK ...] [--all] [--out DIR]   offline render (default stack: fastapi-dev)
    python -m cli schema [--out FILE]                      JSON Schema of Pulumi.<stack>.yaml
    python -m cli reference                                the config reference (Markdown)
    python -m cli verify STACK [--outputs FILE] [--json]   check the deployed AWS resources (boto3, read-only)
    python -m cli diff BASE HEAD [--markdown]              what a change adds, deletes, replaces (two renders)
    python -m cli lint-migrations [STACK] [--app-dir DIR]  lock and compatibility checks of an app's migrations
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli import sdk_imports
from cli.diff import add_arguments as add_diff_arguments
from cli.diff import command as diff_command
from cli.lint_migrations import add_arguments as add_lint_migrations_arguments
from cli.verify import add_arguments as add_verify_arguments
from stacks.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render_p = sub.add_parser("render", help="run the program under mocks and write out/<stack>/")
    render_p.add_argument("stacks", nargs="*", help="stack names (Pulumi.<stack>.yaml)")
    render_p.add_argument("--all", action="store_true", help="every Pulumi.<stack>.yaml here")
    render_p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    schema_p = sub.add_parser("schema", help="write the JSON Schema of the stack config")
    schema_p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    sub.add_parser("reference", help="print the config reference as Markdown")
    verify_p = sub.add_parser("verify", help="check a deployed stack's AWS resources and service (docs/verify.md)")
    add_verify_arguments(verify_p)
    diff_p = sub.add_parser("diff", help="compare two renders: resources added, deleted, replaced, changed")
    add_diff_arguments(diff_p)
    lint_p = sub.add_parser("lint-migrations", help="check an app's migrations for long locks and for what breaks "
                                                    "the running release (squawk, django-migration-linter)")
    add_lint_migrations_arguments(lint_p)
    args = parser.parse_args(argv)

    if args.command == "render":
        return _render(args)
    if args.command == "verify":
        from cli.verify.run import command

        return command(args)
    if args.command == "diff":
        return diff_command(args)
    if args.command == "lint-migrations":
        from cli.lint_migrations.command import command as lint_migrations_command

        return lint_migrations_command(args)
    if args.command == "schema":
        from cli.schema import stack_file_schema_text

        text = stack_file_schema_text()
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            sys.stdout.write(text)
        return 0
    from cli.reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0


def _render(args: argparse.Namespace) -> int:
    from cli.render import DEFAULT_STACK, example_stacks, render

    names = example_stacks() if args.all else (args.stacks or [DEFAULT_STACK])
    failed = 0
    for name in names:
        started = time.perf_counter()
        try:
            path = render(name, args.out)
        except ConfigError as err:
            print(f"{name}: not rendered\n{err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: wrote {path}/ in {time.perf_counter() - started:.2f} s")
    return 2 if failed else 0


if __name__ == "__main__":
    # The commands import the SDKs lazily, inside main(), after the loader is installed.
    sdk_imports.run_as_render_process(main)
