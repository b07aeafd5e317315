"""Seed-OSS (ByteDance's open Doubao-family model, `seed_oss`): Llama's decoder with biased q/k/v
projections and a separately configured output-projection bias."""

from __future__ import annotations

from torch import nn

from ..layers import MLP, Attention
from .llama import DecoderLayer, LlamaForCausalLM


class SeedOssForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        attn = Attention(config, layer_idx, qkv_bias=config.attention_bias, o_bias=config.attention_out_bias)
        mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act, config.mlp_bias)
        return DecoderLayer(config, attn, mlp)
