"""The migration guard: how a release Job runs a migration so that it never blocks traffic.

A migration that waits for a lock on a busy table queues every query of the running release
behind its request; one that rewrites a big table holds its lock for minutes. The guard (the
script components/migration_guard_script.py, mounted from a ConfigMap into the Job by
ReleaseJob) runs the migration command with PostgreSQL's `lock_timeout` and `statement_timeout`
in the connection's options (PGOPTIONS, read by libpq: no app code), retries a lock timeout a
bounded number of times with backoff, and gives up with a message naming the blocking session.

The arithmetic, checked before anything is created (`deadline_problem`):

    (lock_retries + 1) x lock_timeout        every attempt may wait its full lock_timeout
  + the backoff waits between attempts        backoff, doubling, capped at max_backoff
  + statement_timeout                         the last attempt may still run a long statement
  + STARTUP_SECONDS                           the pod's scheduling and image pull, before the guard starts
  <= the Job's activeDeadlineSeconds          Kubernetes stops the Job there, whatever remains
  <  pulumi up's wait for the Job             ReleaseJob: the deadline + PULUMI_WAIT_MARGIN_SECONDS

so every retry the config promises can happen before Kubernetes' deadline, and Kubernetes, not
Pulumi's timeout, ends a Job that overruns. With the defaults: 6 x 5 + (5+10+20+40+60) + 60 + 60
= 285 s, within the 600 s deadline, which `pulumi up` waits 900 s for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components import migration_guard_script as script

SCRIPT_FILE = Path(script.__file__)
SCRIPT_NAME = "webstack_migration_guard.py"
MOUNT_PATH = "/etc/webstack/migration-guard"
# Before the guard's clock starts, the Job's deadline already runs: scheduling, the image pull
# (an app image of a few hundred MB on a new node), the container's start. The guard's own budget
# is the deadline less this, so it gives up with its message before Kubernetes kills the pod
# without one ("DeadlineExceeded").
STARTUP_SECONDS = 60
EXIT_GAVE_UP = script.EXIT_GAVE_UP
# A command name or a path: the interpreter the guard runs under in the app's image.
INTERPRETER_PATTERN = r"^[A-Za-z0-9_./+-]+$"


class MigrationGuardArgs(BaseModel):
    """PostgreSQL timeouts and lock retries of a migration release step; each default is the
    production answer, with its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # While a migration waits for a lock, every query of the running release that needs the same
    # table queues behind it: this is how long the site may stall. 5 s is a pause users barely
    # notice, and long enough to get a lock between the transactions of a busy table.
    lock_timeout_seconds: int = Field(
        5, ge=1, le=60, description="PostgreSQL lock_timeout of the migration's sessions, seconds: how long a "
                                    "statement waits for a lock (and the app's queries queue behind it) before "
                                    "it is cancelled and retried.")
    # A statement that runs longer than this under a strong lock is an outage. Long, lock-light
    # work (CREATE INDEX CONCURRENTLY, batched backfills) lifts it for itself (SET
    # statement_timeout = 0 in that migration) or in this key.
    statement_timeout_seconds: int = Field(
        60, ge=1, le=3600, description="PostgreSQL statement_timeout of the migration's sessions, seconds: a "
                                       "longer statement is cancelled and the release fails (not retried).")
    # A blocker is usually gone within minutes (a report, a vacuum, a slow request); one that
    # is not needs a human, who gets its pid in the message.
    lock_retries: int = Field(5, ge=0, le=20, description="Runs of the migration command after a lock "
                                                          "timeout, before the release fails.")
    backoff_seconds: int = Field(5, ge=1, le=300, description="Wait before the first retry, seconds; doubled "
                                                              "before each next one.")
    max_backoff_seconds: int = Field(60, ge=1, le=600, description="Longest wait between two runs, seconds.")
    python: str = Field(
        "python", min_length=1, max_length=200, pattern=INTERPRETER_PATTERN,
        description="The app image's Python, which runs the guard (with the app's psycopg or psycopg2 when "
                    "importable, to name the blocking session), e.g. python3 or /app/.venv/bin/python.",
        examples=["python3"])

    @model_validator(mode="after")
    def _backoff_order(self) -> "MigrationGuardArgs":
        if problem := self.backoff_problem():
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return self

    # -- the arithmetic -------------------------------------------------------------------
    def backoff_problem(self) -> tuple[str, str] | None:
        if self.max_backoff_seconds < self.backoff_seconds:
            return ("max_backoff_seconds", f"{self.max_backoff_seconds} is below backoff_seconds "
                                           f"({self.backoff_seconds}), the first wait; use {self.backoff_seconds} "
                                           "or more")
        return None

    def waits(self) -> list[int]:
        """Seconds waited before each retry."""
        return script.waits(self.lock_retries, self.backoff_seconds, self.max_backoff_seconds)

    def attempts(self) -> int:
        return self.lock_retries + 1

    def needed_seconds(self) -> int:
        """The Job's deadline these settings need (the module docstring's sum)."""
        return (self.attempts() * self.lock_timeout_seconds + sum(self.waits()) + self.statement_timeout_seconds
                + STARTUP_SECONDS)

    def deadline_problem(self, deadline_seconds: int) -> str | None:
        """Why a Job deadline of `deadline_seconds` cannot hold these retries, if it cannot."""
        needed = self.needed_seconds()
        if needed <= deadline_seconds:
            return None
        waits = "+".join(map(str, self.waits())) or "0"
        return (f"{deadline_seconds} s cannot hold the migration's retries: {self.attempts()} attempts x "
                f"lock_timeout_seconds {self.lock_timeout_seconds} + waits {waits} (backoff_seconds "
                f"{self.backoff_seconds}, max_backoff_seconds {self.max_backoff_seconds}) + "
                f"statement_timeout_seconds {self.statement_timeout_seconds} + {STARTUP_SECONDS} s for the pod "
                f"to start = {needed} s; raise job_deadline_seconds to {needed} or more, or lower lock_retries, "
                "the timeouts or the backoff")

    # -- what the Job runs --------------------------------------------------------------------
    def command(self, command: Sequence[str], deadline_seconds: int) -> list[str]:
        """`command` under the guard. Deterministic (the Job's name hashes it): the same settings
        and command give the same list, so an unchanged release runs nothing again."""
        return [self.python, f"{MOUNT_PATH}/{SCRIPT_NAME}",
                "--lock-timeout", str(self.lock_timeout_seconds),
                "--statement-timeout", str(self.statement_timeout_seconds),
                "--retries", str(self.lock_retries),
                "--backoff", str(self.backoff_seconds),
                "--max-backoff", str(self.max_backoff_seconds),
                "--budget", str(deadline_seconds - STARTUP_SECONDS),
                "--", *command]


def guard_files() -> dict[str, str]:
    """The ConfigMap's files: the guard script, as shipped with the kit."""
    return {SCRIPT_NAME: SCRIPT_FILE.read_text()}
