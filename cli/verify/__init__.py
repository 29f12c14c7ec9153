"""`python -m cli verify <stack>`: prove a deployed stack is what the kit meant to build.

It reads the stack's outputs (`pulumi stack output --json`, or a file given with `--outputs`),
looks at the live AWS resources they name with boto3, read-only, and makes a few HTTP requests
to the service. Every check gives PASS, FAIL or SKIP with a finding and how to fix it; the
exit status is 0 without a FAIL, 1 with one, 2 when the outputs or credentials are unusable.

    outputs.py   reading the stack's outputs; the names verify reads
    aws.py       boto3 calls, cached, each mapped to the IAM actions it needs; errors -> findings
    model.py     Outcome, Result, Check: what a check is and what it returns
    storage.py   the static files' S3 bucket and CloudFront distribution
    database.py  RDS
    cluster.py   EKS, its version against the kit's copy of the EKS release calendar
    waf.py       web ACLs, on the distribution and on the app's ALB
    smoke.py     HTTP requests to the service and its static files
    run.py       the command: run every check, print a table or JSON

The checks themselves are pure functions of API responses (`Outcome`s from dicts), tested
on recorded response shapes as well as against an AWS API emulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (here, so `python -m cli` builds its parser without importing boto3)."""
    parser.add_argument("stack", help="stack whose outputs name the resources (`pulumi stack output -s STACK`)")
    parser.add_argument("--outputs", type=Path, metavar="FILE",
                        help="read the outputs from FILE (`pulumi stack output --json`), not the Pulumi CLI")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results instead of a table")
    parser.add_argument("--asset", metavar="PATH",
                        help="hashed static file to test, relative to static_url (default: from staticfiles.json)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="per HTTP request (default: 10)")
