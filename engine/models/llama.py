"""Llama-family decoder (Llama 2/3, SmolLM2, Mistral); Qwen and Mixtral reuse it with other layers."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import MLP, Attention, RMSNorm, RotaryEmbedding


class DecoderLayer(nn.Module):
    native = None  # the layer as one native call for decode-only steps, where int4 / int8 weights allow (`native_layer`)

    def __init__(self, config, self_attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = self_attn
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = mlp

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.native is not None and (out := self.native(hidden, cos_sin)) is not None:
            return out
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), cos_sin)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class LlamaModel(nn.Module):
    def __init__(self, config, layers: list[nn.Module]) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden`: the input embeddings when the caller made them (a vision model's image rows)."""
        hidden = self.embed_tokens(input_ids) if hidden is None else hidden
        rope = self.position_encoding(positions, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, rope)
        return self.norm(hidden)

    def position_encoding(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """What every layer's attention gets for the step's positions: RoPE's (cos, sin)."""
        return self.rotary_emb(positions, dtype)


class LlamaForCausalLM(nn.Module):
    model_class = LlamaModel

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.model = self.model_class(config, [self.make_layer(config, i) for i in range(config.num_hidden_layers)])
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        bias = getattr(config, "attention_bias", False)
        attn = Attention(config, layer_idx, qkv_bias=bias, o_bias=bias)
        mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act, getattr(config, "mlp_bias", False))
        return DecoderLayer(config, attn, mlp)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Hidden states of every token; `compute_logits` turns the ones that are sampled into logits."""
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)
