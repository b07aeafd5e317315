"""bfloat16 linear layers on weights oneDNN lays out once ("prepacked") for its matmul kernels — AMX tiles
or AVX512-BF16 — where `F.linear` lays a bfloat16 weight out again on every call, and q/k/v and gate/up
stacked into one layer each. At decode's batch sizes the relayout cost about as much as the multiply
(SmolLM2's stacked gate/up at 64 rows: 0.23 ms plain, 0.15 ms packed, on a Xeon with AMX); prompt
chunks of more than `PACKED_ROWS` rows keep `F.linear`, which is as fast or faster there.

Packing only for bfloat16 models on CPUs that multiply bfloat16 natively; stacking for every float model
on a CPU (fewer, larger matmuls). The layers keep their parameters (the parts of a stacked layer become
views of its weight), so adapters, weight loading and parameter names are unchanged — `repack` after
weights change in place."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import native_bfloat16
from .layers import MLP, Attention, stack_parts

PACKED_ROWS = 256  # rows up to which the prepacked weight is used
_HINT_ROWS = 64  # the batch size oneDNN lays the weight out for (any size gives the same results)


def can_pack(dtype: torch.dtype) -> bool:
    """Whether `pack_model` applies: bfloat16 weights on a CPU with native bfloat16 matmuls and oneDNN."""
    return dtype == torch.bfloat16 and native_bfloat16() and torch.backends.mkldnn.is_available()


class PackedLinear(nn.Module):
    """y = x Wᵀ + b, with `pack` through W's prepacked copy (up to `PACKED_ROWS` rows of x). `weight` is
    the layer's own parameter (a layer replaced keeps its parameter names) or the stacked weight its
    parts view."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, pack: bool) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias
        self.out_features, self.in_features = weight.shape
        self.pack = pack
        self.packed: torch.Tensor | None = None
        self.repack()

    def repack(self) -> None:
        if self.pack:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), _HINT_ROWS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is not None and x.dim() == 2 and x.shape[0] <= PACKED_ROWS and x.dtype == self.weight.dtype and x.is_cpu:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def _stacked(parts: list[nn.Linear], pack: bool) -> PackedLinear | None:
    """One packed layer whose outputs are `parts`' side by side (`layers.stack_parts`: the parts' parameters
    become views of its weight and bias). None where the parts differ in input size or in having a bias."""
    stacked = stack_parts(parts, ("weight",))
    return None if stacked is None else PackedLinear(stacked["weight"], stacked["bias"], pack)


def _packed(linear: nn.Module, pack: bool) -> nn.Module:
    return PackedLinear(linear.weight, linear.bias, pack) if pack and type(linear) is nn.Linear else linear


def pack_model(model: nn.Module, pack: bool) -> nn.Module:
    """Stack q/k/v and gate/up into one layer each, in place; with `pack` (see `can_pack`), pack them and
    every other attention and MLP projection and the LM head."""
    for module in model.get_submodule("model.layers").modules():
        if isinstance(module, Attention) and all(type(p) is nn.Linear for p in (module.q_proj, module.k_proj, module.v_proj)):
            module.qkv_proj = _stacked([module.q_proj, module.k_proj, module.v_proj], pack)
            module.o_proj = _packed(module.o_proj, pack)
        elif isinstance(module, MLP) and all(type(p) is nn.Linear for p in (module.gate_proj, module.up_proj)):
            module.gate_up_proj = _stacked([module.gate_proj, module.up_proj], pack)
            module.down_proj = _packed(module.down_proj, pack)
    model.lm_head = _packed(model.lm_head, pack)
    return model


def repack(model: nn.Module) -> None:
    """Lay out every packed layer's weight again (after its values changed in place)."""
    for module in model.modules():
        if isinstance(module, PackedLinear):
            module.repack()
