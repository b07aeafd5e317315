"""bfloat16 linear layers on weights oneDNN lays out once ("prepacked") for its matmul kernels — AMX tiles
or AVX512-BF16 — where `F.linear` lays a bfloat16 weight out again on every call, and q/k/v and gate/up
stacked into one layer each. At decode's batch sizes the relayout cost about as much as the multiply
(SmolLM2's stacked gate/up at 64 rows: 0.23 ms plain, 0.15 ms packed, on a Xeon with AMX); prompt
chunks of more than `PACKED_ROWS` rows keep `F.linear`, which is as fast or faster there.

float32 layers on AMD CPUs multiply through oneDNN on their own weights (no copy): MKL, behind
`F.linear`, runs x·Wᵀ for a few rows far below what the CPU does there. A SmolLM2 step's float32
linears on an AMD EPYC 7001 (Zen 1), best of five: 1 row 47 → 29 ms, 9 rows 160 → 95 ms, 64 rows 430 →
327 ms, 256 rows 1,254 → 1,036 ms. Intel CPUs keep `F.linear` (MKL's own).

Packing only for bfloat16 models on CPUs that multiply bfloat16 natively; stacking for every float model
on a CPU (fewer, larger matmuls). The layers keep their parameters (the parts of a stacked layer become
views of its weight), so adapters, weight loading and parameter names are unchanged — `repack` after
weights change in place."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cpus import cpu_field
from .kernels import native_bfloat16
from .layers import MLP, Attention, stack_parts

PACKED_ROWS = 256  # rows up to which the prepacked weight is used
_HINT_ROWS = 64  # the batch size oneDNN lays the weight out for (any size gives the same results)


def linear_kernel(dtype: torch.dtype) -> str:
    """How `pack_model`'s layers multiply `dtype` weights here: "prepacked" (bfloat16 on a CPU with native
    bfloat16 matmuls), "onednn" (float32 on an AMD CPU), else "linear" (`F.linear`)."""
    if not torch.backends.mkldnn.is_available():
        return "linear"
    if dtype == torch.bfloat16 and native_bfloat16():
        return "prepacked"
    return "onednn" if dtype == torch.float32 and cpu_field("vendor_id") == "AuthenticAMD" else "linear"


class PackedLinear(nn.Module):
    """y = x Wᵀ + b by `kernel` (see `linear_kernel`): "prepacked" through W's prepacked copy (up to
    `PACKED_ROWS` rows of x), "onednn" through oneDNN on W itself, "linear" by `F.linear`. `weight` is
    the layer's own parameter (a layer replaced keeps its parameter names) or the stacked weight its
    parts view."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, kernel: str) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias
        self.out_features, self.in_features = weight.shape
        self.kernel = kernel
        self.packed: torch.Tensor | None = None
        self.repack()

    def repack(self) -> None:
        if self.kernel == "prepacked":
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), _HINT_ROWS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel != "linear" and x.dim() == 2 and x.dtype == self.weight.dtype and x.is_cpu:
            if self.packed is not None and x.shape[0] <= PACKED_ROWS:
                return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
            if self.kernel == "onednn" and not torch.is_grad_enabled() and self.weight.is_contiguous():
                return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def _stacked(parts: list[nn.Linear], kernel: str) -> PackedLinear | None:
    """One layer whose outputs are `parts`' side by side (`layers.stack_parts`: the parts' parameters
    become views of its weight and bias). None where the parts differ in input size or in having a bias."""
    stacked = stack_parts(parts, ("weight",))
    return None if stacked is None else PackedLinear(stacked["weight"], stacked["bias"], kernel)


def _packed(linear: nn.Module, kernel: str) -> nn.Module:
    return PackedLinear(linear.weight, linear.bias, kernel) if kernel != "linear" and type(linear) is nn.Linear else linear


def pack_model(model: nn.Module, kernel: str) -> nn.Module:
    """Stack q/k/v and gate/up into one layer each, in place; with a `kernel` other than "linear" (see
    `linear_kernel`), run them and every other attention and MLP projection and the LM head through it."""
    # the parts run alone in a step where an adapter hooks them: through oneDNN too, whose sums for a part's
    # outputs are the stacked layer's, so a row's result does not depend on its batch (the prepacked
    # kernel would need a packed copy of each part: those parts keep `F.linear`)
    parts_kernel = "onednn" if kernel == "onednn" else "linear"
    for module in model.get_submodule("model.layers").modules():
        if isinstance(module, Attention) and all(type(p) is nn.Linear for p in (module.q_proj, module.k_proj, module.v_proj)):
            module.qkv_proj = _stacked([module.q_proj, module.k_proj, module.v_proj], kernel)
            module.q_proj, module.k_proj, module.v_proj = (_packed(p, parts_kernel) for p in (module.q_proj, module.k_proj, module.v_proj))
            module.o_proj = _packed(module.o_proj, kernel)
        elif isinstance(module, MLP) and all(type(p) is nn.Linear for p in (module.gate_proj, module.up_proj)):
            module.gate_up_proj = _stacked([module.gate_proj, module.up_proj], kernel)
            module.gate_proj, module.up_proj = (_packed(p, parts_kernel) for p in (module.gate_proj, module.up_proj))
            module.down_proj = _packed(module.down_proj, kernel)
    model.lm_head = _packed(model.lm_head, kernel)
    return model


def repack(model: nn.Module) -> None:
    """Lay out every packed layer's weight again (after its values changed in place)."""
    for module in model.modules():
        if isinstance(module, PackedLinear):
            module.repack()
