"""The benchmark's outputs from one run: the JSON, the markdown table with the issue's targets, and
the PNG charts the README shows.

Ratios compare setups measured in the same run on the same pinned cores:
- "x naive": req/s over the naive setup's, same suite, route and connections;
- "of limit": req/s over Nginx's `return 200` at the same connections, the machine's ceiling for an
  HTTP server under this wrk (bench/serve/limits.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUTE_ORDER = ("trivial", "io", "db", "static")
ROLE_ORDER = ("naive", "kit", "tuned", "limit")
RENDER_BUDGET_S = 3.0
# The targets (issue 18).
FASTAPI_TRIVIAL_X = 2.5
DJANGO_IO_X, DJANGO_TRIVIAL_X, DJANGO_STATIC_X = 50.0, 1.5, 8.0
SCALE_100_OVER_10_MAX, SCALE_100_MAX_S = 10.0, 20.0


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    measured: str
    met: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "wanted": self.wanted, "measured": self.measured, "met": self.met}


def _key(run: dict) -> tuple:
    return (run["suite"], run["route"], run["connections"])


def naive_of(runs: list[dict], run: dict) -> dict | None:
    return next((r for r in runs if r["role"] == "naive" and _key(r) == _key(run)), None)


def limit_of(runs: list[dict], connections: int) -> dict | None:
    return next((r for r in runs if r["suite"] == "limits" and r["connections"] == connections), None)


def ratio(a: float, b: float | None) -> float | None:
    return a / b if b else None


def _runs(runs: list[dict], **match: Any) -> list[dict]:
    return [r for r in runs if all(r.get(k) == v for k, v in match.items())]


def _x(value: float | None) -> str:
    # Two decimals below 10x: a target of 2.5x must not read as met at 2.46x.
    return "n/a" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def serve_targets(runs: list[dict]) -> list[Target]:
    """Where each serve target stands, at every connection count measured."""
    targets: list[Target] = []
    for kit in _runs(runs, suite="fastapi", role="kit", route="trivial"):
        conns, naive = kit["connections"], naive_of(runs, kit)
        x = ratio(kit["rps"], naive and naive["rps"])
        targets.append(Target(f"FastAPI {kit['setup']}, trivial route, c{conns}: req/s vs naive",
                              f">= {FASTAPI_TRIVIAL_X}x", _x(x), x is not None and x >= FASTAPI_TRIVIAL_X))
        tuned = [t for t in _runs(runs, suite="fastapi", role="tuned", route="trivial", connections=conns)]
        if tuned:
            best = max(tuned, key=lambda t: t["rps"])
            x = ratio(kit["rps"], best["rps"])
            targets.append(Target(f"FastAPI {kit['setup']}, trivial route, c{conns}: vs the fastest tuned by hand "
                                  f"({best['setup']})", ">= 1.0x", _x(x), x is not None and x >= 1.0))
        limit = limit_of(runs, conns)
        if limit:
            targets.append(Target(f"FastAPI {kit['setup']}, trivial route, c{conns}: share of Nginx return 200",
                                  "(reported)", f"{kit['rps'] / limit['rps']:.1%}", True))
    worse = [k for k in _runs(runs, suite="fastapi", role="kit")
             if (n := naive_of(runs, k)) and not math.isnan(k["p99_ms"]) and k["p99_ms"] > n["p99_ms"]]
    kits = _runs(runs, suite="fastapi", role="kit")
    if kits:
        targets.append(Target("FastAPI kit: p99 no worse than naive on any route", "every route and connections",
                              "met everywhere" if not worse else "worse on " + ", ".join(
                                  f"{k['setup']} {k['route']} c{k['connections']} ({k['p99_ms']:.1f} vs "
                                  f"{naive_of(runs, k)['p99_ms']:.1f} ms)" for k in worse), not worse))
    for route, wanted in (("io", DJANGO_IO_X), ("trivial", DJANGO_TRIVIAL_X), ("static", DJANGO_STATIC_X)):
        for kit in _runs(runs, suite="django", role="kit", route=route):
            naive = naive_of(runs, kit)
            x = ratio(kit["rps"], naive and naive["rps"])
            met = x is not None and x >= wanted
            extra = ""
            if route == "io" and kit["connections"] == 256:
                met = met and kit["errors"] == 0
                extra = f", {kit['errors']} errors"
            targets.append(Target(f"Django kit, {route} route, c{kit['connections']}: req/s vs naive"
                                  + (" with zero errors" if extra else ""), f">= {wanted:g}x", _x(x) + extra, met))
    return targets


def render_targets(render: dict) -> list[Target]:
    targets = [Target(f"render {e['stack']}: cold process, median", f"< {RENDER_BUDGET_S:g} s",
                      f"{e['median_s']:.2f} s", e["median_s"] < RENDER_BUDGET_S) for e in render.get("examples", [])]
    by_n = {s["services"]: s for s in render.get("synthetic", [])}
    if 10 in by_n and 100 in by_n:
        x = by_n[100]["median_s"] / by_n[10]["median_s"]
        targets.append(Target("render 100 services vs 10 services", f"< {SCALE_100_OVER_10_MAX:g}x", f"{x:.1f}x",
                              x < SCALE_100_OVER_10_MAX))
    if 100 in by_n:
        targets.append(Target("render 100 services", f"< {SCALE_100_MAX_S:g} s", f"{by_n[100]['median_s']:.1f} s",
                              by_n[100]["median_s"] < SCALE_100_MAX_S))
    return targets


def _ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def serve_table(runs: list[dict]) -> str:
    lines = ["| suite | setup | route | conns | req/s | p50 ms | p99 ms | errors (timeouts) | server CPU "
             "| x naive | of limit |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def order(r: dict) -> tuple:
        return (("fastapi", "django", "limits").index(r["suite"]), ROUTE_ORDER.index(r["route"]), r["connections"],
                ROLE_ORDER.index(r["role"]), r["setup"])

    for r in sorted(runs, key=order):
        naive, limit = naive_of(runs, r), limit_of(runs, r["connections"])
        x = "" if r["role"] == "naive" or not naive else _x(ratio(r["rps"], naive["rps"]))
        share = f"{r['rps'] / limit['rps']:.1%}" if limit else ""
        lines.append(f"| {r['suite']} | {r['setup']}{' *' if r['disturbed'] else ''} | {r['route']} "
                     f"| {r['connections']} | {r['rps']:.0f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} "
                     f"| {r['errors']} ({r['timeouts']}) | {r['server_cpu_share']:.0%} | {x} | {share} |")
    return "\n".join(lines)


def render_tables(render: dict) -> str:
    out = ["| example stack | first render s (empty cache) | median s | min s | max s | peak RSS MiB | of 3 s |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for e in render.get("examples", []):
        out.append(f"| {e['stack']} | {e['first_s']:.2f} | {e['median_s']:.2f} | {e['min_s']:.2f} "
                   f"| {e['max_s']:.2f} | {e['max_rss_mib']:.0f} | {e['median_s'] / RENDER_BUDGET_S:.0%} |")
    out += ["", "| synthetic stack: web services | resources | median s | min s | max s | peak RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|"]
    for s in render.get("synthetic", []):
        out.append(f"| {s['services']} | {s['resources']} | {s['median_s']:.2f} | {s['min_s']:.2f} "
                   f"| {s['max_s']:.2f} | {s['max_rss_mib']:.0f} |")
    return "\n".join(out)


def targets_table(targets: list[Target]) -> str:
    lines = ["| target | wanted | measured | |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.wanted} | {t.measured} | {'met' if t.met else '**missed**'} |" for t in targets]
    return "\n".join(lines)


def markdown(result: dict, charts: list[str]) -> str:
    machine, opts = result["machine"], result["options"]
    parts = [
        f"# Benchmark {result['date']}",
        "",
        f"`bench/run` in {result['elapsed_s']:.0f} s on {machine['cpus']} ({machine['memory']}); "
        f"{', '.join(machine['versions'])}.",
        "",
        f"**wrk shares the cores with the servers**: every server process and wrk (`-t2`, `--timeout "
        f"{opts['wrk_timeout_s']}s`) are pinned to CPUs {opts['cpus']}, and PostgreSQL runs on them too, so no "
        f"setup gets the cores to itself. Each run: {opts['warm_up']} s warm-up, then {opts['duration']} s "
        "measured, on loopback. `*`: other work used the CPUs right after the run. Errors: non-2xx responses "
        "plus socket errors (timeouts: responses slower than wrk's timeout). Server CPU: the server's processes' "
        f"CPU time over the run's wall time times {machine['pinned_cpus']} CPUs.",
        "",
        "## Targets",
        "",
        targets_table([Target(**t) for t in result["targets"]]),
        "",
        "## Servers",
        "",
        serve_table(result["serve"]),
        "",
        "## Offline render",
        "",
        render_tables(result["render"]) if result.get("render") else "(not run)",
        "",
    ]
    parts += [f"![{Path(c).stem}]({Path(c).name})" for c in charts]
    return "\n".join(parts) + "\n"


def serve_chart(runs: list[dict], path: Path, connections: int) -> bool:
    """req/s per route, naive against the kit (and the tuned and bare setups), one panel per framework,
    log scale (19 and 1000 req/s on one axis)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = [s for s in ("fastapi", "django") if _runs(runs, suite=s, connections=connections)]
    if not suites:
        return False
    limit = limit_of(runs, connections)
    fig, axes = plt.subplots(1, len(suites), figsize=(7 * len(suites), 5.6), squeeze=False)
    for ax, suite in zip(axes[0], suites):
        chosen = _runs(runs, suite=suite, connections=connections)
        routes = [r for r in ROUTE_ORDER if any(c["route"] == r for c in chosen)]
        setups = sorted({c["setup"] for c in chosen},
                        key=lambda s: (ROLE_ORDER.index(next(c["role"] for c in chosen if c["setup"] == s)), s))
        width = 0.8 / len(setups)
        for i, setup in enumerate(setups):
            xs, ys = [], []
            for j, route in enumerate(routes):
                hit = [c for c in chosen if c["setup"] == setup and c["route"] == route]
                if hit:
                    xs.append(j + (i - (len(setups) - 1) / 2) * width)
                    ys.append(hit[0]["rps"])
            bars = ax.bar(xs, ys, width, label=setup)
            ax.bar_label(bars, labels=[f"{y:.0f}" for y in ys], fontsize=7, rotation=90, padding=2)
        if limit:
            ax.axhline(limit["rps"], color="grey", linestyle="--", linewidth=1)
            ax.text(len(routes) - 0.5, limit["rps"], f"nginx return 200: {limit['rps']:.0f}", ha="right",
                    va="bottom", fontsize=8, color="grey")
        ax.set_yscale("log")
        ax.set_xticks(range(len(routes)), routes)
        ax.set_ylabel("requests/s (log)")
        ax.set_title(f"{'FastAPI' if suite == 'fastapi' else 'Django'}, {connections} connections")
        ax.set_ylim(bottom=5)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    fig.suptitle("wrk and the servers share the same 2 cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render_chart(render: dict, path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples, synthetic = render.get("examples", []), render.get("synthetic", [])
    if not examples and not synthetic:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    if examples:
        left.bar([e["stack"] for e in examples], [e["median_s"] for e in examples], color="tab:blue")
        left.axhline(RENDER_BUDGET_S, color="tab:red", linestyle="--", linewidth=1, label="3 s budget")
        left.set_ylabel("seconds, cold process (median)")
        left.set_title("render each example stack")
        left.tick_params(axis="x", labelrotation=30)
        left.legend(fontsize=8)
    if synthetic:
        ns = [s["services"] for s in synthetic]
        right.plot(ns, [s["median_s"] for s in synthetic], marker="o", color="tab:blue", label="time")
        right.set_xlabel("web services in one stack")
        right.set_ylabel("seconds, cold process (median)")
        memory = right.twinx()
        memory.plot(ns, [s["max_rss_mib"] for s in synthetic], marker="s", color="tab:orange", label="peak RSS")
        memory.set_ylabel("peak RSS, MiB")
        right.set_title("render time and memory as a platform grows")
        lines = right.get_legend_handles_labels(), memory.get_legend_handles_labels()
        right.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(result: dict, out_dir: Path) -> list[Path]:
    """<date>.json, <date>.md and the charts, in out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = result["date"]
    charts = []
    for conns in sorted({r["connections"] for r in result["serve"]}):
        chart = out_dir / f"{stem}-serve-c{conns}.png"
        if serve_chart(result["serve"], chart, conns):
            charts.append(chart)
    if result.get("render") and render_chart(result["render"], out_dir / f"{stem}-render.png"):
        charts.append(out_dir / f"{stem}-render.png")
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(result, [c.name for c in charts]))
    return [out_dir / f"{stem}.json", out_dir / f"{stem}.md", *charts]
