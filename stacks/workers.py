"""How many server processes a pod runs: the sizing rule both frameworks' servers share."""

from __future__ import annotations

from decimal import Decimal

from components.k8s_pod import Resources
from components.types import parse_quantity


def whole_core_workers(resources: Resources, *, per_worker: Decimal, overhead: Decimal) -> int:
    """One worker per whole core of the CPU limit (a Python process computes on one core at a time),
    at least one, and no more than the memory limit holds at `per_worker` each beside `overhead`
    (the supervisor or master). Below two cores: one worker, and the HPA adds pods."""
    cores = int(parse_quantity(resources.cpu_limit))
    if cores <= 1:
        return 1
    fit = int((parse_quantity(resources.memory_limit) - overhead) // per_worker)
    return max(1, min(cores, fit))
