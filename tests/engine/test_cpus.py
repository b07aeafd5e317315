"""torch's threads never outnumber the CPUs the process may use (affinity mask and cgroup quota), and
threads other than the engine's leave no OpenMP team behind."""

import os
import threading
import time

import pytest
import torch

from agentforge.engine import LLM
from agentforge.engine.cpus import cap_torch_threads, release_openmp_threads, usable_cpus


def test_usable_cpus_is_within_the_affinity_mask():
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_cap_lowers_torch_threads_and_never_raises_them():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(usable_cpus() + 7)  # as OpenMP does in a container that shows the host's CPUs
        assert cap_torch_threads() == usable_cpus() == torch.get_num_threads()
        torch.set_num_threads(1)
        assert cap_torch_threads() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_an_engine_without_num_threads_caps_torch_threads(tiny_llama_dir):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(usable_cpus() + 7)
        LLM(tiny_llama_dir)
        assert torch.get_num_threads() == usable_cpus()
    finally:
        torch.set_num_threads(before)


def test_a_released_thread_leaves_no_openmp_workers_behind():
    """An OpenMP team outlives its parallel op: its workers stay for the thread's life unless released,
    and with more of them than CPUs libgomp makes every team sleep between parallel ops (engine.cpus)."""
    if usable_cpus() < 2:
        pytest.skip("one CPU: torch starts no OpenMP team")

    def threads() -> set[str]:
        return set(os.listdir("/proc/self/task"))

    seen = {}

    def work():
        before = threads()
        torch.ones(1 << 22).add_(1)  # large enough for a parallel op: this thread's team starts
        seen["workers"] = threads() - before
        seen["released"] = release_openmp_threads()
        deadline = time.monotonic() + 10
        while threads() & seen["workers"] and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["left"] = threads() & seen["workers"]

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["workers"], "the parallel op started no OpenMP worker"
    assert seen["released"] and not seen["left"]
