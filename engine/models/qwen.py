"""Qwen2 (biased q/k/v projections) and Qwen3 (per-head RMS norm on queries and keys), and their
mixture-of-experts variants (Qwen2-MoE with a shared expert, Qwen3-MoE)."""

from __future__ import annotations

from functools import partial

from torch import nn

from ..layers import MLP, Attention, RMSNorm
from .llama import DecoderLayer, LlamaForCausalLM
from .mixtral import qwen_moe_mlp


class Qwen2ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        attn = Attention(config, layer_idx, qkv_bias=True, o_bias=False)
        return DecoderLayer(config, attn, MLP(config.hidden_size, config.intermediate_size, config.hidden_act))


class Qwen3ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        bias = getattr(config, "attention_bias", False)
        norm = partial(RMSNorm, eps=config.rms_norm_eps)
        attn = Attention(config, layer_idx, qkv_bias=bias, o_bias=bias, qk_norm=norm)
        return DecoderLayer(config, attn, MLP(config.hidden_size, config.intermediate_size, config.hidden_act))


class Qwen2MoeForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        attn = Attention(config, layer_idx, qkv_bias=getattr(config, "qkv_bias", True), o_bias=False)
        return DecoderLayer(config, attn, qwen_moe_mlp(config, layer_idx, shared=True))


class Qwen3MoeForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        bias = getattr(config, "attention_bias", False)
        attn = Attention(config, layer_idx, qkv_bias=bias, o_bias=bias, qk_norm=partial(RMSNorm, eps=config.rms_norm_eps))
        return DecoderLayer(config, attn, qwen_moe_mlp(config, layer_idx, shared=False))
