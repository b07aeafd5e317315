"""Weight-only quantization: int4 / int8 linear layers, computed by PyTorch's CPU kernels.

- `Int4Linear`: groups of 32 input weights share a scale and an offset (asymmetric round-to-nearest
  from the group's min and max — exactly how llama.cpp makes Q4_1, so a Q4_1 GGUF's weights come
  back as they were quantized, up to bfloat16 scales), packed for `_weight_int4pack_mm_for_cpu`.
- `Int8Linear`: one scale per output channel (symmetric), for `_weight_int8pack_mm`; the token
  embedding table quantized the same way serves a tied LM head too (`Int8Embedding`).
Activations stay in the engine's dtype; the int4 kernel computes in bfloat16, so its input is cast.
Norms, biases and everything that is not a linear layer keep their dtype.
"""

from __future__ import annotations

import torch
from torch import nn

GROUP = 32  # int4 weights per scale/offset pair (Q4_1's block)


class Int4Linear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        groups = w.view(self.out_features, -1, GROUP)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / 15).clamp(min=1e-12)
        q = ((groups - low[..., None]) / scale[..., None]).round_().clamp_(0, 15).to(torch.int32)
        self.register_buffer("packed", torch._convert_weight_to_int4pack_for_cpu(q.view_as(w), 1))
        # the kernel reads w = (q - 8) * scale + zero, so zero = low + 8 * scale; [groups, out, 2]
        self.register_buffer("scales_zeros", torch.stack([scale, low + 8 * scale], -1).transpose(0, 1).contiguous().bfloat16())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scales_zeros).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)


def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: (values [rows, cols], scales [rows])."""
    w = weight.detach().float()
    scale = (w.abs().amax(-1) / 127).clamp(min=1e-12)
    return (w / scale[:, None]).round_().clamp_(-127, 127).to(torch.int8), scale


class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear | None = None, *, table: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        values, scales = table if table is not None else _int8_rows(linear.weight)
        self.out_features, self.in_features = values.shape
        self.register_buffer("values", values)
        self.register_buffer("scales", scales)
        bias = None if linear is None else linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        y = torch._weight_int8pack_mm(flat, self.values, self.scales.to(x.dtype))
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)


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


def quantize_model(model: nn.Module, mode: str, dtype: torch.dtype) -> nn.Module:
    """Replace the decoder's linear layers (int4 or int8) and the token embeddings / LM head (int8), in place."""
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
    model.model.embed_tokens = Int8Embedding(embed, dtype)
    quantized = model.model.embed_tokens
    model.lm_head = Int8Linear(table=(quantized.values, quantized.scales)) if tied else Int8Linear(model.lm_head)
    return model
