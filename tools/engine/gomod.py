"""Writes the go.mod of a throwaway module that builds one upstream release.

`go install module@version` refuses a module whose go.mod has `replace` directives (Pulumi's
pkg and language host, k8s.io/kubernetes, etcd's server). Those replaces point either at other
released modules (kept as they are) or at folders of the same repository (`../sdk`,
`./staging/src/k8s.io/api`), which exist only in a checkout. A throwaway module that requires the
release and turns each local replace into the released module of the same repository at one
version builds the same program from module-proxy downloads alone.

usage: gomod.py UPSTREAM_GO_MOD NAME REQUIRE@VERSION [REQUIRE@VERSION ...]
                [--local-version V] [--pin MODULE=VERSION ...]

  --local-version  version given to every module a local replace stood for (default: the first
                   REQUIRE's version); --pin overrides it for one module.
  Replaces into ./FORBIDDEN_DEPENDENCY (etcd's guard against importing itself) are dropped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def upstream_replaces(go_mod: str) -> list[dict]:
    out = subprocess.run(["go", "mod", "edit", "-json", go_mod], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out).get("Replace") or []


def render(go_mod: str, name: str, requires: list[str], local_version: str | None,
           pins: dict[str, str]) -> str:
    lines = [f"module {name}", "", "go 1.26.0", ""]
    for req in requires:
        mod, _, ver = req.partition("@")
        lines.append(f"require {mod} {ver}")
    default_version = local_version or requires[0].partition("@")[2]
    lines.append("")
    for rep in upstream_replaces(go_mod):
        old, new = rep["Old"], rep["New"]
        old_spec = old["Path"] + (f" {old['Version']}" if old.get("Version") else "")
        if "Version" in new:  # points at another released module: keep it as it is
            lines.append(f"replace {old_spec} => {new['Path']} {new['Version']}")
        elif "FORBIDDEN_DEPENDENCY" in new["Path"]:
            continue
        else:  # a folder of the same repository: use that module's release instead
            version = pins.get(old["Path"], default_version)
            lines.append(f"replace {old_spec} => {old['Path']} {version}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("upstream_go_mod")
    ap.add_argument("name")
    ap.add_argument("requires", nargs="+")
    ap.add_argument("--local-version")
    ap.add_argument("--pin", action="append", default=[])
    args = ap.parse_args(argv)
    pins = dict(p.split("=", 1) for p in args.pin)
    sys.stdout.write(render(args.upstream_go_mod, args.name, args.requires,
                            args.local_version, pins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
