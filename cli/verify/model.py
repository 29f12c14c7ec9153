"""What a check is (`Check`), what it returns (`Outcome`), and a row of the report (`Result`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cli.verify.run import Context
    from cli.verify.outputs import StackOutputs

Verdict = Literal["PASS", "FAIL", "SKIP"]


@dataclass(frozen=True)
class Outcome:
    """A check's answer: the verdict, what was found, and (unless PASS) how to fix it."""

    verdict: Verdict
    finding: str
    fix: str = ""


def passed(finding: str) -> Outcome:
    return Outcome("PASS", finding)


def failed(finding: str, fix: str) -> Outcome:
    return Outcome("FAIL", finding, fix)


def deletion_protection(enabled: bool | None, *, environment: str, what: str, fix: str) -> Outcome:
    """One verdict for every resource with deletion protection: on passes; off fails, except in dev,
    whose profile turns it off; not reported (an endpoint that does not say) is a skip."""
    if enabled is None:
        return skipped("the API answer has no deletionProtection field (an endpoint that does not report it?)")
    if enabled:
        return passed("deletion protection on")
    if environment == "dev":
        return skipped("deletion protection off; the dev profile turns it off", fix)
    return failed(f"deletion protection off: one API call deletes the {what}", fix)


def skipped(finding: str, fix: str = "") -> Outcome:
    return Outcome("SKIP", finding, fix)


@dataclass(frozen=True)
class Result:
    """One row of the report."""

    check: str
    resource: str
    verdict: Verdict
    finding: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "resource": self.resource, "verdict": self.verdict,
                "finding": self.finding, "fix": self.fix}


class Problem(Exception):
    """A check could not look at its resource (permission, missing resource, network): a FAIL,
    since nothing was proved, with a message that says what to do."""

    def __init__(self, finding: str, fix: str) -> None:
        super().__init__(finding)
        self.finding = finding
        self.fix = fix


def always(_: "StackOutputs") -> str | None:
    return None


@dataclass(frozen=True)
class Check:
    """One property of one resource.

    `needs`: the stack outputs that name the resource; without one of them the check is
    SKIP ("the stack exports no ..."), never a crash. The first names the resource in the report.
    `applies`: a reason the check does not apply to this stack (e.g. no database), or None.
    `aws`: the check reads AWS APIs (SKIP on target `local`)."""

    id: str
    summary: str
    needs: tuple[str, ...]
    run: Callable[["Context"], Outcome]
    aws: bool = True
    applies: Callable[["StackOutputs"], str | None] = always
