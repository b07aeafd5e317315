"""How many CPUs this process may really use: the affinity mask, capped by a cgroup CPU quota.

A container limited to two CPUs by quota still shows the host's CPUs to `os.cpu_count()` and to
OpenMP, so torch starts one thread per host CPU and they take turns on two: every parallel op
then waits on threads that are not running (several times slower than two threads).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None when unlimited."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
        elif v1[0].exists():
            quota, period = v1[0].read_text().strip(), v1[1].read_text().strip()
        else:
            return None
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    return int(quota) / int(period)


def usable_cpus() -> int:
    """CPUs this process can run on at once (at least one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def cap_torch_threads() -> int:
    """Lower torch's intra-op threads to the usable CPUs (never raises them); returns the count."""
    threads = min(torch.get_num_threads(), usable_cpus())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
