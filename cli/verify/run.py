"""The command: read the outputs, run every check, print a table (or JSON), exit 0/1/2."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from cli.verify import cluster, database, smoke, storage, waf
from cli.verify.aws import Aws, UsageError
from cli.verify.model import Check, Outcome, Problem, Result, skipped
from cli.verify.outputs import OutputsError, StackOutputs, read_outputs_file, read_pulumi_outputs
from cli.verify.smoke import Http

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# In the report's order: static files, database, cluster, the app's ALB, then HTTP.
CHECKS: list[Check] = [*storage.CHECKS, waf.CLOUDFRONT_WAF, *database.CHECKS, *cluster.CHECKS, waf.ALB_WAF,
                       *smoke.CHECKS]


@dataclass
class Context:
    """What a check reads: the outputs, AWS (boto3), HTTP, today's date, an optional --asset."""

    outputs: StackOutputs
    aws: Aws
    http: Http
    today: date
    asset: str | None = None


def precondition(check: Check, outputs: StackOutputs) -> Outcome | None:
    """SKIP before looking: AWS checks on a local stack, checks that don't apply, missing outputs."""
    if check.aws and outputs.text("target") == "local":
        return skipped("not applicable: target local has no AWS resources")
    reason = check.applies(outputs)
    if reason:
        return skipped(f"not applicable: {reason}")
    for name in check.needs:
        if name not in outputs:
            return skipped(f"not checked: the stack exports no {name} (older kit version?)",
                           f"update the kit and `pulumi up -s {outputs.stack}`, or add {name} to the --outputs file")
    return None


def run_checks(ctx: Context, checks: Sequence[Check] = CHECKS) -> list[Result]:
    """Every check's row. Raises UsageError (before any check runs) when AWS checks would run
    but the credentials, region or endpoint are unusable."""
    early = {c.id: precondition(c, ctx.outputs) for c in checks}
    if any(c.aws and early[c.id] is None for c in checks):
        ctx.aws.whoami()
    results = []
    for check in checks:
        outcome = early[check.id]
        if outcome is None:
            try:
                outcome = check.run(ctx)
            except Problem as problem:
                outcome = Outcome("FAIL", problem.finding, problem.fix)
        resource = ctx.outputs.text(check.needs[0]) if check.needs else ""
        results.append(Result(check.id, resource or "-", outcome.verdict, outcome.finding, outcome.fix))
    return results


def summary(results: Sequence[Result]) -> str:
    counts = Counter(r.verdict for r in results)
    return f"{len(results)} checks: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP"


def render_table(results: Sequence[Result], width: int | None = None) -> str:
    """check | resource | verdict | finding | how to fix, long cells wrapped."""
    width = width or max(120, shutil.get_terminal_size((160, 24)).columns)
    head = ("CHECK", "RESOURCE", "VERDICT", "FINDING", "HOW TO FIX")
    w_check = max(len(head[0]), *(len(r.check) for r in results)) if results else len(head[0])
    w_res = min(40, max(len(head[1]), *(len(r.resource) for r in results))) if results else len(head[1])
    w_verdict = len(head[2])
    rest = max(60, width - w_check - w_res - w_verdict - 8)
    w_finding = rest // 2
    w_fix = rest - w_finding
    widths = (w_check, w_res, w_verdict, w_finding, w_fix)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    lines = [line(head), line(["-" * w for w in widths])]
    for r in results:
        columns = [[r.check], textwrap.wrap(r.resource, w_res, break_on_hyphens=False) or ["-"], [r.verdict],
                   textwrap.wrap(r.finding, w_finding, break_on_hyphens=False) or [""],
                   textwrap.wrap(r.fix, w_fix, break_on_hyphens=False) or [""]]
        for i in range(max(len(c) for c in columns)):
            lines.append(line([c[i] if i < len(c) else "" for c in columns]))
    return "\n".join(lines)


def command(args: argparse.Namespace, *, today: date | None = None) -> int:
    """`python -m cli verify`: 0 no FAIL, 1 a FAIL, 2 outputs or credentials unusable."""
    try:
        outputs = read_outputs_file(args.stack, args.outputs) if args.outputs else read_pulumi_outputs(args.stack)
    except OutputsError as err:
        print(f"verify {args.stack}: {err}", file=sys.stderr)
        return EXIT_USAGE
    ctx = Context(outputs, Aws(region=outputs.text("aws_region") or None), Http(args.timeout),
                  today or date.today(), args.asset)
    try:
        results = run_checks(ctx)
    except UsageError as err:
        print(f"verify {args.stack}: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        who = ctx.aws.identity
        where = f"{who['Arn']} in account {who['Account']}, region {ctx.aws.region}" if who else "no AWS calls"
        print(f"webstack verify {args.stack} ({outputs.text('framework') or '?'}, "
              f"{outputs.text('environment') or '?'}, {outputs.text('target') or '?'}): {where}, {ctx.today}\n")
        print(render_table(results))
        print(f"\n{summary(results)}")
    return EXIT_FAILED if any(r.verdict == "FAIL" for r in results) else EXIT_OK
