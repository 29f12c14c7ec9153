"""What every serve benchmark shares: wrk as the load, the server's CPU from /proc, and one
record per measured run.

Every run is pinned to the same CPUs (`Options.cpus`): on a 2-core machine wrk, the server and
PostgreSQL share both cores, so no setup can reach what the server alone could do; the report
says so next to the numbers. Before each run the load waits (bounded) until nothing else keeps
the CPUs busy and the server has served what the previous run left queued.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

WRK = "/usr/bin/wrk"
# wrk's own default, said out loud: a response slower than this counts as a timeout (an error),
# not a latency.
WRK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class Options:
    duration: int = 5  # seconds per measured run
    warm_up: int = 1  # seconds of load before each measured run (JIT-free Python still warms caches, pools)
    connections: tuple[int, ...] = (64, 256)
    cpus: str = "0,1"  # every server process and wrk pinned here (taskset)
    quiet_wait: float = 20  # seconds to wait at most for other work to leave the CPUs
    smoke: bool = False  # tiny sizes: checks the benchmark runs, its numbers mean nothing


@dataclass
class Run:
    """One wrk run against one setup: what bench/report.py tabulates and plots."""

    suite: str  # fastapi | django | limits
    setup: str  # e.g. "naive", "kit", "granian (by hand)", "nginx return 200"
    role: str  # naive | kit | tuned | limit: what the ratios compare
    route: str  # trivial | io | db | static
    path: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int  # wrk: "Non-2xx or 3xx responses"
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    server_cpu_share: float  # CPU time of the server's processes / (wall time x the pinned CPUs)
    server_cpu_ms: float  # the same per answered request
    cpus_busy: float  # share of the pinned CPUs busy during the run (server, wrk, PostgreSQL)
    command: str  # how the setup was started, for the reader
    disturbed: bool = False  # something else used the CPUs right after the run
    extra: dict = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def as_dict(self) -> dict:
        return {**asdict(self), "errors": self.errors}


def pinned(argv: list[str], opts: Options) -> list[str]:
    return ["taskset", "-c", opts.cpus, *argv]


def cpu_count(opts: Options) -> int:
    return len(expand_cpus(opts.cpus))


def expand_cpus(spec: str) -> set[int]:
    cpus: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def missing_tools(opts: Options) -> list[str]:
    problems = []
    if not Path(WRK).exists():
        problems.append(f"{WRK} not found: apt-get install wrk (tools/setup does)")
    if not expand_cpus(opts.cpus) <= os.sched_getaffinity(0):
        problems.append(f"needs CPUs {opts.cpus}; this process may use {sorted(os.sched_getaffinity(0))}")
    return problems


def wrk(url: str, *, duration: int, connections: int, opts: Options) -> dict:
    """One wrk run; its numbers as a dict. Two threads: one wrk thread saturates below what a
    2-worker server serves on loopback."""
    argv = pinned([WRK, "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
                   "--timeout", f"{WRK_TIMEOUT_SECONDS}s", url], opts)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    def latency_ms(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not found:  # no response came back within the timeout
            return float("nan")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": sum(counts),
            "timeouts": counts[3]}


def session_cpu_seconds(sessions: list[int]) -> float:
    """CPU time of every process in these sessions (a server started with start_new_session and its
    workers), including children they reaped (workers replaced during the run)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) in sessions:  # field 6 is the session id; utime, stime, cutime, cstime follow
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_sample(cpus: set[int]) -> tuple[int, int]:
    """(total, idle + iowait) jiffies summed over `cpus`, from /proc/stat."""
    total = idle = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu" and int(name[3:]) in cpus:
            numbers = [int(v) for v in values]
            total += sum(numbers)
            idle += numbers[3] + numbers[4]
    return total, idle


def busy_fraction(cpus: set[int], seconds: float = 1.0) -> float:
    total0, idle0 = cpu_sample(cpus)
    time.sleep(seconds)
    total1, idle1 = cpu_sample(cpus)
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(opts: Options, limit: float = 0.10) -> None:
    """Waits (bounded) until other work leaves the CPUs: a build during a run makes it meaningless."""
    cpus = expand_cpus(opts.cpus)
    deadline = time.monotonic() + opts.quiet_wait
    while busy_fraction(cpus, 0.5) > limit and time.monotonic() < deadline:
        pass


def answers_fast(url: str, within: float = 0.2) -> bool:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
            return response.status == 200 and time.monotonic() - started < within
    except (OSError, urllib.error.HTTPError):
        return False


def drain(url: str, max_wait: float = 45) -> bool:
    """Waits until `url` answers within 0.2 s again. After wrk exits a server may still serve what
    was queued (a sync worker answers each request whose connection wrk closed), which must not
    spill into the next run. False if it never did."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        if answers_fast(url):
            return True
        time.sleep(0.2)
    return False


def measure(*, suite: str, setup: str, role: str, route: str, base_url: str, path: str, sessions: list[int],
            command: str, opts: Options, ready_path: str | None = None, connections: tuple[int, ...] | None = None,
            log=print) -> list[Run]:
    """wrk against `base_url + path` at each connection count: a warm-up, then the measured run,
    with the server's CPU read from its sessions over the measured run. `ready_path` (default
    `path`) is what drain() polls between runs."""
    cpus = expand_cpus(opts.cpus)
    probe = base_url + (ready_path or path)
    runs = []
    for conns in connections or opts.connections:
        drain(probe)
        wait_for_quiet(opts)
        if opts.warm_up:  # wrk refuses -d0s (smoke runs have no warm-up)
            wrk(base_url + path, duration=opts.warm_up, connections=conns, opts=opts)
            drain(probe)
        cpu0, (total0, idle0), wall0 = session_cpu_seconds(sessions), cpu_sample(cpus), time.monotonic()
        numbers = wrk(base_url + path, duration=opts.duration, connections=conns, opts=opts)
        cpu1, (total1, idle1), wall1 = session_cpu_seconds(sessions), cpu_sample(cpus), time.monotonic()
        server_cpu = cpu1 - cpu0
        run = Run(suite=suite, setup=setup, role=role, route=route, path=path, connections=conns,
                  duration_s=opts.duration, **numbers,
                  server_cpu_share=server_cpu / max(1e-9, (wall1 - wall0) * len(cpus)),
                  server_cpu_ms=1000 * server_cpu / max(1, numbers["requests"]),
                  cpus_busy=1 - (idle1 - idle0) / max(1, total1 - total0), command=command)
        drained = drain(probe)
        run.disturbed = not drained or busy_fraction(cpus, 0.5) > 0.10
        runs.append(run)
        log(f"  {suite:<8} {setup:<28} {route:<8} c{conns:<4} {run.rps:>9.0f} req/s  p50 {run.p50_ms:>8.2f} ms  "
            f"p99 {run.p99_ms:>8.2f} ms  errors {run.errors} (timeouts {run.timeouts})  "
            f"server CPU {run.server_cpu_share:.0%}{'  (disturbed)' if run.disturbed else ''}")
    return runs
