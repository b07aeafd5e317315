"""Building blocks shared by the model files: norms, rotary embeddings, attention and MLP.

Parameter names follow Hugging Face's, so a checkpoint's state dict loads without renaming.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .attention import PagedAttention, step_has_adapters
from .kernels import native_ops

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
}


def head_dim_of(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def hooked(*modules: nn.Module) -> bool:
    """Whether forward hooks (a LoRA adapter's) act on any of the modules in this step: then they must run
    one by one. Hooks stay registered while their adapter is loaded, but do nothing in a step without
    adapter rows."""
    return step_has_adapters() and any(m._forward_hooks for m in modules)


def stack_parts(parts: list[nn.Module], names: tuple[str, ...]) -> dict[str, torch.Tensor | None] | None:
    """The linear layers' weight tensors `names`, and their biases ("bias": None without), stacked along
    the output rows; each part's own become views of the stacks (no second copy; a parameter stays a
    parameter). None where the parts differ in input size or in having a bias."""
    if len({p.in_features for p in parts}) > 1 or len({p.bias is None for p in parts}) > 1:
        return None
    if parts[0].bias is not None:
        names = (*names, "bias")
    stacked = {name: torch.cat([getattr(p, name).detach() for p in parts]) for name in names}
    start = 0
    for part in parts:
        rows = slice(start, start + part.out_features)
        for name, whole in stacked.items():
            view = whole[rows]
            setattr(part, name, nn.Parameter(view, requires_grad=False) if isinstance(getattr(part, name), nn.Parameter) else view)
        start += part.out_features
    return {"bias": None, **stacked}


class RMSNorm(nn.Module):
    """RMS norm computed in float32. `unit_offset=True` is Gemma's variant: scales by (1 + weight)."""

    def __init__(self, dim: int, eps: float, unit_offset: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.unit_offset = unit_offset
        self.weight = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cpu and x.is_contiguous() and not torch.is_grad_enabled() and (ops := native_ops()) is not None:
            return ops.rms_norm(x, self.weight, self.eps, self.unit_offset)
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.unit_offset:
            return (x * (1.0 + self.weight.float())).to(dtype)
        return self.weight * x.to(dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for the given positions; any RoPE type transformers knows (llama3, yarn, ...)."""

    def __init__(self, config, layer_type: str | None = None) -> None:
        super().__init__()
        params = config.rope_parameters
        if layer_type is not None and layer_type in params:
            params = params[layer_type]
        rope_type = params.get("rope_type", "default")
        if rope_type == "default" or (rope_type == "dynamic" and params.get("alpha")):
            # Hunyuan's "dynamic" with a fixed alpha only stretches the base: static, like the default
            dim = head_dim_of(config)
            base = params["rope_theta"] * (params["alpha"] ** (dim / (dim - 2)) if rope_type == "dynamic" else 1.0)
            inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
            scaling = 1.0
        else:
            from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

            kwargs = {"layer_type": layer_type} if layer_type is not None else {}
            inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](config, None, **kwargs)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.scaling = scaling

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.scaling).to(dtype)[:, None, :], (emb.sin() * self.scaling).to(dtype)[:, None, :]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    if (x.is_cpu and x.dim() == 3 and x.is_contiguous() and cos.shape == sin.shape == (x.shape[0], 1, x.shape[2])
            and not torch.is_grad_enabled() and (ops := native_ops()) is not None):
        return ops.rotary(x, cos, sin)
    return x * cos + rotate_half(x) * sin


def apply_rotary_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on interleaved pairs (x0, x1), (x2, x3), ... (DeepSeek, Llama 4), each pair by one
    frequency; the result lists the rotated evens then the odds — a fixed reordering of dims, the
    same for queries and keys, so their dot products are those of the interleaved layout."""
    half = cos.shape[-1] // 2  # cos/sin are cat(freqs, freqs)
    cos, sin, even, odd = cos[..., :half], sin[..., :half], x[..., 0::2], x[..., 1::2]
    return torch.cat([even * cos - odd * sin, odd * cos + even * sin], dim=-1)


class Attention(nn.Module):
    """Multi-head attention with GQA/MQA, optional q/k norm, sliding window or chunked attention and
    logit soft-capping, over the paged cache."""

    def __init__(
        self,
        config,
        layer_idx: int,
        *,
        qkv_bias: bool = False,
        o_bias: bool = False,
        qk_norm: Callable[[int], nn.Module] | None = None,
        scale: float | None = None,
        softcap: float | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim = head_dim_of(config)
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, hidden, bias=o_bias)
        self.qkv_proj: nn.Module | None = None  # q/k/v stacked, where quantization fused them (`quant.fuse`)
        self.q_norm = qk_norm(self.head_dim) if qk_norm else None
        self.k_norm = qk_norm(self.head_dim) if qk_norm else None
        layer_types = getattr(config, "layer_types", None)
        if layer_types:
            window = config.sliding_window if layer_types[layer_idx] == "sliding_attention" else None
        else:
            window = getattr(config, "sliding_window", None)
        chunk = config.attention_chunk_size if layer_types and layer_types[layer_idx] == "chunked_attention" else None
        self.attn = PagedAttention(self.num_heads, self.num_kv_heads, self.head_dim, scale or self.head_dim**-0.5,
                                   window, softcap, chunk=chunk)

    def project(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries [T, heads, dim], keys and values [T, kv_heads, dim]."""
        t = hidden.shape[0]
        if self.qkv_proj is not None and not hooked(self.q_proj, self.k_proj, self.v_proj):
            kv = self.num_kv_heads * self.head_dim
            q, k, v = (x.contiguous() for x in self.qkv_proj(hidden).split([self.num_heads * self.head_dim, kv, kv], -1))
        else:
            q, k, v = self.q_proj(hidden), self.k_proj(hidden), self.v_proj(hidden)
        return (q.view(t, self.num_heads, self.head_dim), k.view(t, self.num_kv_heads, self.head_dim),
                v.view(t, self.num_kv_heads, self.head_dim))

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        q, k, v = self.project(hidden)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = cos_sin
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return self.o_proj(self.attn(q, k, v).view(t, -1))


class MLP(nn.Module):
    """Gated MLP (SwiGLU / GeGLU): down(act(gate(x)) * up(x))."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=bias)
        self.gate_up_proj: nn.Module | None = None  # gate/up stacked, where quantization fused them (`quant.fuse`)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = self.gate_up_proj is not None and not hooked(self.gate_proj, self.up_proj)
        gate_up = self.gate_up_proj(x) if stacked else None
        if (self.act is F.silu and x.is_cpu and x.dim() == 2 and not torch.is_grad_enabled()
                and (ops := native_ops()) is not None):
            # one pass where SiLU and * were two; the parts' outputs side by side where they ran one by one
            # (an adapter acts), so a row's activation is the same with or without adapters in its step
            if gate_up is None:
                gate_up = torch.cat([self.gate_proj(x), self.up_proj(x)], -1)
            return self.down_proj(ops.silu_mul(gate_up))
        gate, up = gate_up.chunk(2, -1) if gate_up is not None else (self.gate_proj(x), self.up_proj(x))
        return self.down_proj(self.act(gate) * up)
