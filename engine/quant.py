"""Weight-only quantization: int4 / int8 linear layers, computed by a native kernel and PyTorch's CPU kernels.

- `Int4Linear`: groups of 32 input weights share a scale and an offset (asymmetric round-to-nearest
  from the group's min and max — exactly how llama.cpp makes Q4_1, so a Q4_1 GGUF's weights come
  back as they were quantized, up to bfloat16 scales), packed as Q4_1 blocks. A few rows at a time
  (decodes, draft verification) go through the native kernel (`kernels/quant_linear.cpp`): activations
  quantized to int16 per group of 32, integer dot products; larger batches dequantize the layer and
  run a float matmul (float32 where the CPU has no native bfloat16).
- `Int8Linear`: one scale per output channel (symmetric); a few rows go through the native kernel
  the same way, larger batches through `_weight_int8pack_mm`. The token embedding table quantized
  the same way serves a tied LM head too (`Int8Embedding`).
- `Int6Linear` / `Int6Embedding`: an int4 model's LM head and token embeddings, at 6 bits (groups of
  32 as Q4_1, their scales and offsets 8-bit fractions of one pair per row: 6.5 bits a weight). Every
  logit's error comes through that table: int4 there took SmolLM2's logit error from 1.7 % to 6.4 %,
  6 bits to 2.5 % (llama.cpp's Q4_K_M keeps its output matrix at Q6_K likewise).
Activations stay in the engine's dtype.
Norms, biases and everything that is not a linear layer keep their dtype.

A layer's q/k/v projections, and its MLP's gate/up, are also stacked into one quantized matrix
(`fuse`): one kernel call instead of three (two) per step, the activations quantized once. The
separate layers stay, as views of the stacked weights, for whatever hooks them (LoRA adapters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import native_bfloat16, native_ops
from .layers import MLP, Attention, stack_parts

GROUP = 32  # int4 weights per scale/offset pair (Q4_1's block)
SMALL_BATCH = 32  # rows up to which the int4 kernel beats dequantizing the layer for a float matmul


class _GroupLinear(nn.Module):
    """A layer whose weights a native kernel multiplies a few rows at a time (`_kernel`); larger batches,
    and CPUs without the kernels, multiply its dequantized weights (`dequantize`) in a float matmul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cpu and x.numel() <= SMALL_BATCH * self.in_features and (ops := native_ops()) is not None:
            y = self._kernel(ops, x)
        else:  # bfloat16 matmuls are emulated, and slow, on CPUs without native bfloat16
            dtype = x.dtype if x.dtype != torch.bfloat16 or native_bfloat16() else torch.float32
            y = F.linear(x.to(dtype), self.dequantize(dtype)).to(x.dtype)
        return y if self.bias is None else y + self.bias


class Int4Linear(_GroupLinear):
    weight_names = ("qs", "dm")  # the buffers that hold the weights

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        groups = w.view(self.out_features, -1, GROUP)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / 15).clamp(min=1e-12)
        q = ((groups - low[..., None]) / scale[..., None]).round_().clamp_(0, 15).to(torch.uint8)
        # Q4_1's layout: byte j of a group holds q[j] (low nibble) and q[j + 16] (high nibble)
        self.register_buffer("qs", (q[..., :16] | (q[..., 16:] << 4)).view(self.out_features, -1).contiguous())
        self.register_buffer("dm", torch.stack([scale, low], -1).bfloat16())  # [out, groups, (d, m)]: w = d * q + m
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def _kernel(self, ops, x: torch.Tensor) -> torch.Tensor:
        return ops.int4_linear(x, self.qs, self.dm)

    def dequantize(self, dtype: torch.dtype) -> torch.Tensor:
        """The [out, in] weights in `dtype` (the native kernel's; PyTorch's where it was not built — then
        every call dequantizes, slowly — or on a GPU)."""
        if self.qs.is_cpu and (ops := native_ops()) is not None:
            return ops.int4_dequantize(self.qs, self.dm).to(dtype)
        qs = self.qs.view(self.out_features, -1, GROUP // 2)
        q = torch.cat([qs & 0x0F, qs >> 4], -1).float()  # [out, groups, 32]
        d, m = self.dm.float().unbind(-1)
        return (q * d[..., None] + m[..., None]).view(self.out_features, self.in_features).to(dtype)


def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: (values [rows, cols], scales [rows])."""
    w = weight.detach().float()
    scale = (w.abs().amax(-1) / 127).clamp(min=1e-12)
    return (w / scale[:, None]).round_().clamp_(-127, 127).to(torch.int8), scale


class Int8Linear(nn.Module):
    weight_names = ("values", "scales")  # the buffers that hold the weights

    def __init__(self, linear: nn.Linear | None = None, *, table: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        values, scales = table if table is not None else _int8_rows(linear.weight)
        self.out_features, self.in_features = values.shape
        self.register_buffer("values", values)
        self.register_buffer("scales", scales)
        bias = None if linear is None else linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.is_cpu and x.numel() <= SMALL_BATCH * self.in_features and self.in_features % GROUP == 0
                and (ops := native_ops()) is not None):
            y = ops.int8_linear(x, self.values, self.scales)
        else:
            flat = x.reshape(-1, self.in_features)
            y = torch._weight_int8pack_mm(flat, self.values, self.scales.to(x.dtype)).view(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


class Int8Embedding(nn.Module):
    def __init__(self, embedding: nn.Embedding, dtype: torch.dtype) -> None:
        super().__init__()
        values, scales = _int8_rows(embedding.weight)
        self.dtype = dtype
        self.register_buffer("values", values)
        self.register_buffer("scales", scales)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (for code that reads the embeddings, e.g. a model's fingerprint)."""
        return (self.values.float() * self.scales[:, None]).to(self.dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return (self.values[ids].to(torch.float32) * self.scales[ids, None]).to(self.dtype)


def _int6_rows(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """The Int6Linear buffers of a [rows, cols] weight (cols a multiple of 32), a few thousand rows at a
    time (no float32 copy of a whole embedding table)."""
    parts = []
    for chunk in weight.detach().split(4096):
        groups = chunk.float().view(chunk.shape[0], -1, GROUP)
        low, high = groups.amin(-1), groups.amax(-1)
        d = (high - low) / 63
        row_d = (d.amax(-1) / 255).clamp(min=1e-30).bfloat16()
        row_m = (low.abs().amax(-1) / 127).clamp(min=1e-30).bfloat16()
        du = (d / row_d.float()[:, None]).round_().clamp_(1, 255)
        mu = (low / row_m.float()[:, None]).round_().clamp_(-127, 127)
        scale, offset = du * row_d.float()[:, None], mu * row_m.float()[:, None]
        q = ((groups - offset[..., None]) / scale[..., None]).round_().clamp_(0, 63).to(torch.uint8)
        top = q >> 4
        parts.append({
            "qs": ((q[..., :16] & 0x0F) | (q[..., 16:] << 4)).flatten(1),  # Q4_1's nibble layout
            "qh": (top[..., :8] | top[..., 8:16] << 2 | top[..., 16:24] << 4 | top[..., 24:] << 6).flatten(1),
            "scales": torch.stack([du, mu + 128], -1).to(torch.uint8),
            "row_scales": torch.stack([row_d, row_m], -1),
        })
    return {name: torch.cat([part[name] for part in parts]) for name in Int6Linear.weight_names}


class Int6Linear(_GroupLinear):
    weight_names = ("qs", "qh", "scales", "row_scales")  # the buffers that hold the weights

    def __init__(self, linear: nn.Linear | None = None, *, table: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        buffers = table if table is not None else _int6_rows(linear.weight)
        for name in self.weight_names:
            self.register_buffer(name, buffers[name])
        self.out_features, self.in_features = self.qs.shape[0], self.qs.shape[1] * 2
        bias = None if linear is None else linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def _kernel(self, ops, x: torch.Tensor) -> torch.Tensor:
        return ops.int6_linear(x, self.qs, self.qh, self.scales, self.row_scales)

    def dequantize(self, dtype: torch.dtype, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The [out, in] weights in `dtype` — only `rows` of them where given (an embedding lookup)."""
        qs, qh, scales, row_scales = (getattr(self, name) if rows is None else getattr(self, name)[rows]
                                      for name in self.weight_names)
        if qs.is_cpu and dtype in (torch.float32, torch.bfloat16) and (ops := native_ops()) is not None:
            return ops.int6_dequantize(qs, qh, scales, row_scales, dtype)
        nibbles, tops = qs.view(len(qs), -1, 16), qh.view(len(qh), -1, 8)
        q = torch.cat([nibbles & 0x0F, nibbles >> 4], -1) | torch.cat([tops >> s & 0x03 for s in (0, 2, 4, 6)], -1) << 4
        d = scales[..., 0].float() * row_scales[:, :1].float()
        m = (scales[..., 1].float() - 128) * row_scales[:, 1:].float()
        return (q.float() * d[..., None] + m[..., None]).flatten(1).to(dtype)


class Int6Embedding(nn.Module):
    def __init__(self, embedding: nn.Embedding, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.table = Int6Linear(table=_int6_rows(embedding.weight))

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (for code that reads the embeddings, e.g. a model's fingerprint)."""
        return self.table.dequantize(self.dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table.dequantize(self.dtype, ids.flatten()).view(*ids.shape, -1)


def fuse(parts: list[nn.Module]) -> nn.Module | None:
    """One quantized layer whose outputs are `parts`' outputs side by side, its weights stacked; each
    part's buffers become views of the stacked ones (no second copy). None where the parts differ in
    kind, input size or having a bias."""
    kind = type(parts[0])
    if kind not in (Int4Linear, Int8Linear) or any(type(p) is not kind for p in parts):
        return None
    stacked = stack_parts(parts, kind.weight_names)
    if stacked is None:
        return None
    fused = kind.__new__(kind)
    nn.Module.__init__(fused)
    fused.in_features, fused.out_features = parts[0].in_features, sum(p.out_features for p in parts)
    for name in kind.weight_names:
        fused.register_buffer(name, stacked[name])
    fused.bias = None if stacked["bias"] is None else nn.Parameter(stacked["bias"], requires_grad=False)
    return fused


def quantize_model(model: nn.Module, mode: str, dtype: torch.dtype) -> nn.Module:
    """Replace the decoder's linear layers (int4 or int8) and the token embeddings / LM head (int4: 6-bit
    where the rows are a multiple of 32 wide, else int8; int8: int8), in place."""
    layer_type = Int4Linear if mode == "int4" else Int8Linear
    decoder = model.get_submodule("model.layers")
    for name, module in list(decoder.named_modules()):
        for child_name, child in list(module.named_children()):
            # a MoE router (mlp.gate, Llama 4's feed_forward.router, Hunyuan's mlp.gate.wg) and a shared expert's
            # gate (one output) stay exact; so does MLA's kv_b_proj, whose weight DeepSeek's attention uses as matrices
            exact = (child_name in ("gate", "router", "shared_expert_gate") and name.endswith(("mlp", "feed_forward"))
                     or name.endswith("mlp.gate") or child_name == "kv_b_proj")
            if isinstance(child, nn.Linear) and child.in_features % GROUP == 0 and not exact:
                setattr(module, child_name, layer_type(child))
    embed = model.get_submodule("model.embed_tokens")
    tied = model.lm_head.weight is embed.weight
    if mode == "int4" and embed.weight.shape[1] % GROUP == 0 and (tied or model.lm_head.in_features % GROUP == 0):
        model.model.embed_tokens = Int6Embedding(embed, dtype)
        model.lm_head = model.model.embed_tokens.table if tied else Int6Linear(model.lm_head)
    else:
        model.model.embed_tokens = Int8Embedding(embed, dtype)
        quantized = model.model.embed_tokens
        model.lm_head = Int8Linear(table=(quantized.values, quantized.scales)) if tied else Int8Linear(model.lm_head)
    for module in decoder.modules():
        if isinstance(module, Attention):
            module.qkv_proj = fuse([module.q_proj, module.k_proj, module.v_proj])
        elif isinstance(module, MLP):
            module.gate_up_proj = fuse([module.gate_proj, module.up_proj])
    return model
