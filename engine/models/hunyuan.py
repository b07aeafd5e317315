"""Hunyuan dense (`hunyuan_v1_dense`): Llama's decoder with per-head RMS norms on queries and keys
applied after the rotary embedding (Qwen3 applies them before), named query/key_layernorm."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import MLP, Attention, RMSNorm, apply_rotary
from .llama import DecoderLayer, LlamaForCausalLM


class HunYuanAttention(Attention):
    def __init__(self, config, layer_idx: int) -> None:
        super().__init__(config, layer_idx, qkv_bias=config.attention_bias, o_bias=config.attention_bias)
        self.query_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.key_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        q = self.q_proj(hidden).view(t, self.num_heads, self.head_dim)
        k = self.k_proj(hidden).view(t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(hidden).view(t, self.num_kv_heads, self.head_dim)
        cos, sin = cos_sin
        q, k = self.query_layernorm(apply_rotary(q, cos, sin)), self.key_layernorm(apply_rotary(k, cos, sin))
        return self.o_proj(self.attn(q, k, v).view(t, -1))


class HunYuanDenseV1ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act, getattr(config, "mlp_bias", False))
        return DecoderLayer(config, HunYuanAttention(config, layer_idx), mlp)
