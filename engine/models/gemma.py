"""Gemma 2 and Gemma 3 text decoders: sliding-window and global layers (each kind with its own RoPE
base in Gemma 3), four norms per layer (1 + weight), embeddings scaled by sqrt(hidden_size), tied
head, soft-capped final logits. Gemma 3 normalizes queries and keys; Gemma 2 soft-caps the
attention logits instead."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ..layers import MLP, Attention, RMSNorm, RotaryEmbedding


class GemmaDecoderLayer(nn.Module):
    def __init__(self, config, layer_idx: int, qk_norm: bool) -> None:
        super().__init__()
        norm = partial(RMSNorm, eps=config.rms_norm_eps, unit_offset=True)
        self.layer_type = config.layer_types[layer_idx]
        self.self_attn = Attention(
            config,
            layer_idx,
            qkv_bias=config.attention_bias,
            o_bias=config.attention_bias,
            qk_norm=norm if qk_norm else None,
            scale=config.query_pre_attn_scalar**-0.5,
            softcap=getattr(config, "attn_logit_softcapping", None),
        )
        self.mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_activation)
        self.input_layernorm = norm(config.hidden_size)
        self.post_attention_layernorm = norm(config.hidden_size)
        self.pre_feedforward_layernorm = norm(config.hidden_size)
        self.post_feedforward_layernorm = norm(config.hidden_size)

    def forward(self, hidden: torch.Tensor, cos_sin: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        attn = self.self_attn(self.input_layernorm(hidden), cos_sin[self.layer_type])
        hidden = hidden + self.post_attention_layernorm(attn)
        mlp = self.mlp(self.pre_feedforward_layernorm(hidden))
        return hidden + self.post_feedforward_layernorm(mlp)


class GemmaModel(nn.Module):
    def __init__(self, config, qk_norm: bool) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_scale = config.hidden_size**0.5
        self.layers = nn.ModuleList(GemmaDecoderLayer(config, i, qk_norm) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, unit_offset=True)
        self.rotary_emb = nn.ModuleDict({t: RotaryEmbedding(config, t) for t in sorted(set(config.layer_types))})

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        hidden = self.embed_tokens(input_ids)
        hidden = hidden * torch.tensor(self.embed_scale, dtype=hidden.dtype)
        cos_sin = {t: rope(positions, hidden.dtype) for t, rope in self.rotary_emb.items()}
        for layer in self.layers:
            hidden = layer(hidden, cos_sin)
        return self.norm(hidden)


class Gemma3ForCausalLM(nn.Module):
    qk_norm = True

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.model = GemmaModel(config, self.qk_norm)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.softcap = config.final_logit_softcapping

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(hidden)
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


class Gemma2ForCausalLM(Gemma3ForCausalLM):
    """Gemma 2: no q/k norm; attention logits soft-capped (`attn_logit_softcapping`)."""

    qk_norm = False
