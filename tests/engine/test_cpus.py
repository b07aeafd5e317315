"""torch's threads never outnumber the CPUs the process may use (affinity mask and cgroup quota)."""

import os

import torch

from agentforge.engine import LLM
from agentforge.engine.cpus import cap_torch_threads, usable_cpus


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
