"""`python -m cli lint-migrations`: check an app's migrations before a release Job runs them.

    python -m cli lint-migrations [STACK] [--app-dir DIR] [--since REF] [--python PATH] ...

The release Job migrates while the previous release still serves (docs: README, "Migrations"), so
a migration must neither hold a strong lock for long (every query of the table queues behind it)
nor break the code that is still running. This command renders the SQL of the app's migrations as
its framework would run them and checks it:

- Django: in the app's own interpreter, `sqlmigrate` on a throwaway PostgreSQL server that the
  command starts and deletes (sqlmigrate needs a live database; see scratch_postgres.py), and
  django-migration-linter's checks (backward-incompatible operations, data migrations);
- FastAPI/Alembic: `alembic upgrade heads --sql` (offline: no database), split per revision;
- both: squawk on each migration's SQL, for the PostgreSQL version the stack deploys.

Each finding names the migration, the operation and the kit's safe rewrite; the exit status is 1
when anything is found, 2 when the migrations could not be linted. A finding reviewed and accepted
is waived in the migration file itself, with its reason:

    # webstack: allow ban-drop-column -- release 41 stopped reading items.legacy_code

Only the arguments are here, so `python -m cli` (every render) builds its parser without importing
the command (command.py: 24 ms of imports).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Rendering every migration, applying each to the scratch database: seconds for dozens, minutes for
# thousands. Bounded, so a hung import (a settings module that waits on the network) ends.
DEFAULT_TIMEOUT_S = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", nargs="?",
                        help="a stack (Pulumi.<stack>.yaml): its framework, the PostgreSQL version it deploys, and "
                             "the app env its release Job gets")
    parser.add_argument("--app-dir", type=Path, default=None,
                        help="the app's folder, with manage.py (Django) or alembic.ini (Alembic); default: the "
                             "current folder")
    parser.add_argument("--framework", choices=("django", "fastapi"),
                        help="default: the stack's, else found from the app's folder")
    parser.add_argument("--since", metavar="REF",
                        help="only the migrations added or changed since REF's merge base with HEAD, uncommitted "
                             "ones included (a pull request's: its base branch); default: all of the app's")
    parser.add_argument("--python", type=Path,
                        help="the app's interpreter, with its packages (Django + django-migration-linter, or "
                             "Alembic); default: the reference apps' virtualenvs, else <app-dir>/.venv or venv")
    parser.add_argument("--settings", metavar="MODULE",
                        help="DJANGO_SETTINGS_MODULE; default: the stack's app.env, else manage.py's")
    parser.add_argument("--alembic-ini", type=Path, help="default: <app-dir>/alembic.ini")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable the app needs to import its settings (repeat for more)")
    parser.add_argument("--pg-version", metavar="VERSION",
                        help="the PostgreSQL version squawk checks for; default: the stack's, else the kit's")
    parser.add_argument("--postgres-bin", type=Path, metavar="DIR",
                        help="Django: the folder with initdb and pg_ctl for the scratch server; default: on PATH, "
                             "else /usr/lib/postgresql/<newest>/bin")
    parser.add_argument("--squawk", type=Path, metavar="PATH", help="default: the one in this virtualenv, else PATH")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"how long the app's interpreter may take (default: {DEFAULT_TIMEOUT_S:.0f})")
