"""Idefics3 (SmolVLM): a SigLIP-style vision encoder, a pixel-shuffle connector and a Llama decoder.

An image reaches the decoder as tiles (the image processor's split plus a downscaled global view);
each tile becomes `image_seq_len` embeddings that take the places of the `<image>` tokens the
processor wrote into the prompt (`engine/images.py`). Everything else is the Llama decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..images import StepImages, TiledImages
from ..layers import ACTIVATIONS
from .llama import LlamaForCausalLM


class VisionEmbeddings(nn.Module):
    """Patches of a full-size tile (the processor resizes and splits every image into them), each
    with its learned position."""

    def __init__(self, config) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, config.patch_size)
        self.position_embedding = nn.Embedding((config.image_size // config.patch_size) ** 2, config.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.patch_embedding(pixels).flatten(2).transpose(1, 2) + self.position_embedding.weight


class VisionAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        size = config.hidden_size
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(size, size) for _ in range(3))
        self.out_proj = nn.Linear(size, size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        b, n, _ = hidden.shape
        q, k, v = (p(hidden).view(b, n, self.num_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class VisionMLP(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = VisionAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.layer_norm1(hidden))
        return hidden + self.mlp(self.layer_norm2(hidden))


class VisionTransformer(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.image_size = config.image_size
        self.embeddings = VisionEmbeddings(config)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(VisionLayer(config) for _ in range(config.num_hidden_layers))
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Tiles (n, 3, image_size, image_size) -> one vector per patch."""
        hidden = self.embeddings(pixels)
        for layer in self.encoder.layers:
            hidden = layer(hidden)
        return self.post_layernorm(hidden)


class Connector(nn.Module):
    """Pixel shuffle (scale² neighbouring patches side by side, so a tile has scale² fewer
    vectors) and a projection into the decoder's embedding space."""

    def __init__(self, config) -> None:
        super().__init__()
        self.scale = config.scale_factor
        self.modality_projection = nn.Module()
        self.modality_projection.proj = nn.Linear(config.vision_config.hidden_size * self.scale**2,
                                                  config.text_config.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        n, seq, dim = hidden.shape
        side, s = int(seq**0.5), self.scale
        hidden = hidden.view(n, side, side // s, dim * s).permute(0, 2, 1, 3)
        hidden = hidden.reshape(n, side // s, side // s, dim * s * s).permute(0, 2, 1, 3)
        return self.modality_projection.proj(hidden.reshape(n, seq // (s * s), dim * s * s))


class Idefics3ForConditionalGeneration(LlamaForCausalLM):
    """`config` is transformers' Idefics3Config; the decoder is built from its `text_config`."""

    checkpoint_prefixes = (("model.text_model.", "model."), ("model.vision_model.", "vision_model."),
                           ("model.connector.", "connector."))

    def __init__(self, config) -> None:
        text = config.text_config
        text.tie_word_embeddings = getattr(config, "tie_word_embeddings", False) or getattr(text, "tie_word_embeddings", False)
        super().__init__(text)
        self.vision_model = VisionTransformer(config.vision_config)
        self.connector = Connector(config)
        self.image_token_id = config.image_token_id

    def image_processor(self, path, tokenizer) -> TiledImages:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(path)
        return TiledImages(processor, self.image_token_id, processor.image_seq_len, self.vision_model.image_size)

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Tiles -> (1, tiles * image_seq_len, hidden): the embeddings of their `<image>` tokens, in order."""
        dtype = self.vision_model.embeddings.patch_embedding.weight.dtype
        return self.connector(self.vision_model(pixels.to(dtype))).flatten(0, 1)[None]

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, images: StepImages | None = None) -> torch.Tensor:
        """`images`: the flat rows holding `<image>` tokens and the embeddings they take."""
        hidden = self.model.embed_tokens(input_ids)
        if images is not None:
            hidden[images.rows] = images.embeds[0].to(hidden.dtype)
        return self.model(input_ids, positions, hidden)
