"""Ministral 3 (`ministral3`, the text model of Mistral 3): Llama's decoder with YaRN RoPE and
Llama 4's attention temperature — queries grow by 1 + beta * log(1 + floor(position / original
window)), which keeps attention sharp far past the window the model was first trained on."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import MLP, Attention, apply_rotary
from .llama import DecoderLayer, LlamaForCausalLM, LlamaModel


class Ministral3Attention(Attention):
    def forward(self, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        q, k, v = self.project(hidden)
        cos, sin, temperature = rope
        q, k = apply_rotary(q, cos, sin) * temperature, apply_rotary(k, cos, sin)
        return self.o_proj(self.attn(q, k, v).view(t, -1))


class Ministral3Model(LlamaModel):
    def __init__(self, config, layers: list[nn.Module]) -> None:
        super().__init__(config, layers)
        params = config.rope_parameters
        self.beta = params.get("llama_4_scaling_beta") or 0.0
        self.original_window = params.get("original_max_position_embeddings") or config.max_position_embeddings

    def position_encoding(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(cos, sin, the queries' temperature per position)."""
        temperature = 1 + self.beta * torch.log1p(torch.floor(positions.float() / self.original_window))
        return *self.rotary_emb(positions, dtype), temperature.to(dtype)[:, None, None]


class Ministral3ForCausalLM(LlamaForCausalLM):
    model_class = Ministral3Model

    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act)
        return DecoderLayer(config, Ministral3Attention(config, layer_idx), mlp)
