"""How many CPUs this process may really use, and keeping OpenMP's threads within them.

A container limited to two CPUs by quota still shows the host's CPUs to `os.cpu_count()` and to
OpenMP, so torch starts one thread per host CPU and they take turns on two: every parallel op
then waits on threads that are not running (several times slower than two threads).

An OpenMP thread team belongs to the thread that started it, and its workers stay for the thread's
life. With more of them alive than CPUs — a team in the engine's thread and another in any thread
that ran a parallel torch op before (loading a model, embedding texts) — libgomp stops spinning
between parallel regions and puts every team's workers to sleep instead: each of the engine's
hundreds of small parallel ops a step then waits for a worker to wake (SmolLM2 in bfloat16: a
64-sequence decode step 86 ms instead of 50, a single stream 24 tokens/s instead of 41).
`release_openmp_threads` lets a thread's idle team go once its torch work is done.
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch


@cache
def _first_cpu() -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo, read once; empty where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in lines):
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_field(name: str) -> str:
    """A field of the first CPU in /proc/cpuinfo ("vendor_id", "model name", "flags"), "" where there is
    none: what the engine picks its kernels by (instruction sets, the vendor's math library quirks)."""
    return _first_cpu().get(name, "")


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


@cache
def _libgomp_pause():
    """`omp_pause_resource_all` of the libgomp torch loaded (its Linux builds), else None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    loaded = [line.split()[-1] for line in maps.splitlines() if "/libgomp" in line]
    torch_lib = str(Path(torch.__file__).parent / "lib")  # torch's own copy where another is loaded too
    path = next((p for p in loaded if p.startswith(torch_lib)), loaded[0] if loaded else None)
    try:
        return ctypes.CDLL(path).omp_pause_resource_all if path else None
    except (OSError, AttributeError):
        return None


def release_openmp_threads() -> bool:
    """End the calling thread's idle OpenMP team (libgomp's `omp_pause_resource_all`; a later parallel
    op starts a new one), so that the engine's team is the only one alive. Returns whether one could be
    ended: False where torch does not run on libgomp."""
    pause = _libgomp_pause()
    return pause is not None and pause(1) == 0  # omp_pause_soft


@contextmanager
def openmp_threads_released() -> Iterator[None]:
    """Torch work on a thread other than the engine's: its OpenMP team ends with the block, however it ends."""
    try:
        yield
    finally:
        release_openmp_threads()
