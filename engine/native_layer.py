"""A Llama-style decoder layer with int4 or int8 weights run as one native call (`kernels/decode_layer.cpp`)
when every row of the step is a paged row (decodes, draft verification), no LoRA adapter applies and
there are few enough rows for the quantized kernels (`quant.SMALL_BATCH`).

The module path costs a single stream ≈ 0.1 ms of Python per layer (module calls, slicing, the cache
writes) — a third of SmolLM2's int4 decode step; the native call runs the same kernels in the same
order (an int8 KV cache quantized as the module path quantizes it), so the output is the same. Prompt
chunks, adapters and images keep the module path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import PagedAttention, get_context
from .kernels import native_ops
from .layers import MLP, Attention, RMSNorm
from .quant import SMALL_BATCH, Int4Linear, Int8Linear


@dataclass(slots=True)
class NativeDecodeLayer:
    weights: tuple[torch.Tensor, ...]
    int8: bool  # the linear layers' kind: Int8Linear (values, scales) or Int4Linear (qs, dm)
    attn: PagedAttention  # its caches are bound after quantization, by the model runner
    num_heads: int
    num_kv_heads: int
    eps: float

    def __call__(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """The layer's output, or None where this step needs the module path."""
        ctx = get_context()
        if not ctx.native_layers or hidden.shape[0] > SMALL_BATCH or (ops := native_ops()) is None:
            return None  # more rows: the modules dequantize for a float matmul, which is faster there
        paged, a = ctx.paged, self.attn
        return ops.decode_layer(hidden, self.weights, self.int8, *cos_sin, a.k_cache, a.v_cache, ctx.slot_mapping,
                                paged.block_tables, paged.context_lens, paged.query_starts, self.num_heads,
                                self.num_kv_heads, self.eps, a.scale, a.sliding_window or 0, a.softcap or 0.0,
                                a.chunk or 0, a.k_scale, a.v_scale)

    @classmethod
    def of(cls, layer: nn.Module) -> NativeDecodeLayer | None:
        """The native form of a decoder layer, or None unless it is exactly the Llama layer the kernel
        computes: plain RMS norms, int4 or int8 linear layers with q/k/v and gate/up stacked, no biases,
        no q/k norms, SiLU."""
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        norms = getattr(layer, "input_layernorm", None), getattr(layer, "post_attention_layernorm", None)
        if type(attn) is not Attention or type(mlp) is not MLP or any(type(n) is not RMSNorm or n.unit_offset for n in norms):
            return None
        linears = (attn.qkv_proj, attn.o_proj, mlp.gate_up_proj, mlp.down_proj)
        kind = type(linears[0])
        if (kind not in (Int4Linear, Int8Linear) or any(type(lin) is not kind or lin.bias is not None for lin in linears)
                or attn.q_norm is not None or mlp.act is not F.silu or norms[0].eps != norms[1].eps):
            return None
        qkv, o, gate_up, down = ([getattr(lin, name) for name in kind.weight_names] for lin in linears)
        weights = [norms[0].weight, *qkv, *o, norms[1].weight, *gate_up, *down]  # decode_layer.cpp's order
        return cls(tuple(w.detach() for w in weights), kind is Int8Linear, attn.attn, attn.num_heads, attn.num_kv_heads,
                   norms[0].eps)


def enable_native_layers(model: nn.Module) -> None:
    """Give each eligible decoder layer its native form (`layer.native`)."""
    for layer in model.get_submodule("model.layers"):
        if hasattr(layer, "native"):
            layer.native = NativeDecodeLayer.of(layer)
