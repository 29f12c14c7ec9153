"""How many connections an RDS for PostgreSQL instance class accepts with the default parameter
group: the number the Django stack sizes its threads to, and the alerts on database connections
compare the app's open connections with."""

from __future__ import annotations

import re
from decimal import Decimal

# RDS for PostgreSQL's default: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
RDS_BYTES_PER_CONNECTION = 9531392
RDS_MAX_CONNECTIONS = 5000
# DBInstanceClassMemory is the class's memory less what the OS and RDS's own processes take; AWS
# does not publish it. Reported defaults put it at ~77% of nominal on 1 GiB classes and 88-97%
# from 2 GiB up (db.t2.small 198, db.t2.medium 413, db.m4.large 856, db.r4.large 1660). 70% is
# under all of them: the kit may refuse a budget the database would just hold, never the reverse.
RDS_USABLE_MEMORY = Decimal("0.70")
# Slots ordinary roles cannot use: superuser_reserved_connections (3) and
# rds.rds_superuser_reserved_connections (2), RDS for PostgreSQL's defaults.
RDS_RESERVED_CONNECTIONS = 3 + 2
GIB = 2**30
_T_CLASS_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GIB_PER_VCPU = {**dict.fromkeys(("m5", "m6g", "m6i", "m7g", "m7i", "m8g"), 4),
                 **dict.fromkeys(("r5", "r6g", "r6i", "r7g", "r7i", "r8g"), 8)}
_CLASS = re.compile(r"^db\.(?P<family>[a-z0-9]+)\.(?P<size>[a-z0-9]+)$")
_XLARGE = re.compile(r"^(?P<n>[1-9][0-9]*)?xlarge$")


def max_connections(instance_class: str) -> int | None:
    """Connections an RDS for PostgreSQL instance of this class lets the app open with the default
    parameter group: the default max_connections (on RDS_USABLE_MEMORY of the class's memory) less
    the reserved slots. None for a class not known here (the budget is then not checked)."""
    memory = instance_memory_gib(instance_class)
    if memory is None:
        return None
    usable = Decimal(memory * GIB) * RDS_USABLE_MEMORY
    return min(int(usable // RDS_BYTES_PER_CONNECTION), RDS_MAX_CONNECTIONS) - RDS_RESERVED_CONNECTIONS


def instance_memory_gib(instance_class: str) -> int | None:
    """Nominal memory of the burstable (t3, t4g), general-purpose (m: 4 GiB per vCPU) and
    memory-optimised (r: 8 GiB per vCPU) classes; large is 2 vCPUs, xlarge 4, Nxlarge 4N."""
    match = _CLASS.match(instance_class)
    if not match:
        return None
    family, size = match["family"], match["size"]
    if family in ("t3", "t4g"):
        return _T_CLASS_GIB.get(size)
    if family not in _GIB_PER_VCPU:
        return None
    if size == "large":
        vcpus = 2
    elif xlarge := _XLARGE.match(size):
        vcpus = 4 * int(xlarge["n"] or 1)
    else:
        return None
    return vcpus * _GIB_PER_VCPU[family]
