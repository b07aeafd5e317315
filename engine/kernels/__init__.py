"""Native CPU kernels, compiled at first use with torch's C++ extension toolchain and cached.

The build is keyed by the source, torch's version and install path (two virtual environments each
keep their own build: sharing one folder, each rewrote the other's build file and rebuilt, contending
for its lock) and the CPU's instruction sets (it is compiled with `-march=native`), so a cached
library never runs on a CPU it was not built for. Without a compiler — or with
`AGENTFORGE_NATIVE_KERNELS=0` — `native_ops()` returns None and the engine keeps its pure-PyTorch
paths, which are also the reference the kernels are tested against.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from functools import cache
from pathlib import Path

import torch

from ..cpus import cpu_field

log = logging.getLogger(__name__)

_SOURCES = [Path(__file__).with_name(name) for name in ("paged_attention.cpp", "quant_linear.cpp", "int6_linear.cpp", "layer_ops.cpp", "decode_layer.cpp")]
_HEADERS = [Path(__file__).with_name(name) for name in ("vec.h", "quant_rows.h", "kernels.h", "layer_rows.h")]


def _cpu_fingerprint() -> str:
    return cpu_field("flags") or platform.processor()


@cache
def native_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere it is emulated."""
    return not {"avx512_bf16", "amx_bf16"}.isdisjoint(cpu_field("flags").split())


@cache
def native_ops():
    """`torch.ops.agentforge` with the compiled kernels, or None where they cannot be built."""
    if os.environ.get("AGENTFORGE_NATIVE_KERNELS", "1") == "0":
        return None
    from torch.utils import cpp_extension

    key = hashlib.sha256()
    for source in _SOURCES + _HEADERS:
        key.update(source.read_bytes())
    key.update(torch.__version__.encode() + torch.__file__.encode() + _cpu_fingerprint().encode())
    name = f"agentforge_kernels_{key.hexdigest()[:12]}"
    try:
        cpp_extension.load(
            name,
            [str(s) for s in _SOURCES],
            # -fopenmp: at::parallel_for is OpenMP in torch's headers (libgomp resolves to the copy torch loaded)
            extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as exc:  # no compiler, no ninja, a read-only cache: fall back, once, loudly
        log.warning("native kernels unavailable, using the PyTorch paths: %s: %s", type(exc).__name__, exc)
        return None
    return torch.ops.agentforge
