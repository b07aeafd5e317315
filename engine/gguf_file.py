"""GGUF files: metadata -> transformers config, tensors -> dequantized Hugging Face state dict,
tokenizer and chat template from the metadata.

Dequantization (Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q5_K/Q6_K/...) is the `gguf` package's; llama.cpp's
tensor names, its rotary permutation of q/k and Gemma's stored (1 + weight) norms are undone here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import ModelLoadError

_GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_gate_inp": "mlp.gate",
    "ffn_down_exps": "mlp.experts.down_proj",
}
_GEMMA3_LAYER_NAMES = {
    **_GGUF_LAYER_NAMES,
    "ffn_norm": "pre_feedforward_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
_GGUF_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def _gguf_config(meta: dict, tensor_names: set[str]):
    from transformers import (
        Gemma3TextConfig,
        LlamaConfig,
        MixtralConfig,
        Qwen2Config,
        Qwen3Config,
    )

    arch = meta["general.architecture"]

    def p(key: str, default=None):
        return meta.get(f"{arch}.{key}", default)

    heads = p("attention.head_count")
    hidden = p("embedding_length")
    head_dim = p("attention.key_length") or hidden // heads
    common = dict(
        vocab_size=p("vocab_size") or meta["tokenizer.ggml.tokens"],  # the reader gives arrays as counts
        hidden_size=hidden,
        intermediate_size=p("feed_forward_length"),
        num_hidden_layers=p("block_count"),
        num_attention_heads=heads,
        num_key_value_heads=p("attention.head_count_kv", heads),
        head_dim=head_dim,
        max_position_embeddings=p("context_length"),
        rms_norm_eps=p("attention.layer_norm_rms_epsilon", 1e-6),
        tie_word_embeddings="output.weight" not in tensor_names,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
    )
    rope = {"rope_type": "default", "rope_theta": p("rope.freq_base", 10000.0)}
    if arch == "llama" and p("expert_count"):
        return MixtralConfig(
            **common,
            rope_parameters=rope,
            num_local_experts=p("expert_count"),
            num_experts_per_tok=p("expert_used_count"),
            architectures=["MixtralForCausalLM"],
        )
    if arch == "llama":
        return LlamaConfig(**common, rope_parameters=rope, architectures=["LlamaForCausalLM"])
    if arch == "qwen2":
        return Qwen2Config(**common, rope_parameters=rope, architectures=["Qwen2ForCausalLM"])
    if arch == "qwen3":
        return Qwen3Config(**common, rope_parameters=rope, architectures=["Qwen3ForCausalLM"])
    if arch == "gemma3":
        n = common["num_hidden_layers"]
        return Gemma3TextConfig(
            **common,
            sliding_window=p("attention.sliding_window"),
            query_pre_attn_scalar=head_dim,
            layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n)],
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": rope,
            },
            architectures=["Gemma3ForCausalLM"],
        )
    raise ModelLoadError(f"unsupported GGUF architecture {arch!r}; supported: llama, qwen2, qwen3, gemma3")


def gguf_tokenizer(path: Path):
    """The tokenizer and chat template the file's metadata describes (transformers' converter)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf import (
        convert_gguf_tokenizer,
        get_gguf_tokenizer,
    )

    arch, tokenizer_dict, tokenizer_config = get_gguf_tokenizer(str(path))
    backend, extra = convert_gguf_tokenizer(arch, tokenizer_dict)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokenizer_config, **extra)


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation (interleaved rotary halves -> Hugging Face order)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # by value type
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_tensor_table(blob: np.ndarray) -> tuple[list[tuple[str, tuple[int, ...], int, int]], int]:
    """[(name, torch-order shape, ggml type, offset)] and where tensor data starts.

    Reads only the header and skips metadata values (the tokenizer arrays are large): the
    `gguf` package's reader parses every value and takes ~10 s on a 262k-token vocabulary.
    """
    if bytes(blob[:4]) != b"GGUF":
        raise ModelLoadError("not a GGUF file (bad magic bytes)")
    version, tensor_count, kv_count = struct.unpack_from("<IQQ", blob, 4)
    if version not in (2, 3):
        raise ModelLoadError(f"unsupported GGUF version {version}")
    pos, alignment = 24, 32

    def skip_string(pos: int) -> int:
        (length,) = struct.unpack_from("<Q", blob, pos)
        return pos + 8 + length

    for _ in range(kv_count):
        key_end = skip_string(pos)
        key = bytes(blob[pos + 8 : key_end]).decode()
        (value_type,) = struct.unpack_from("<I", blob, key_end)
        pos = key_end + 4
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", blob, pos)
        if value_type == _GGUF_STRING:
            pos = skip_string(pos)
        elif value_type == _GGUF_ARRAY:
            item_type, count = struct.unpack_from("<IQ", blob, pos)
            pos += 12
            if item_type == _GGUF_STRING:
                for _ in range(count):
                    pos = skip_string(pos)
            else:
                pos += count * _GGUF_SCALAR_SIZES[item_type]
        else:
            pos += _GGUF_SCALAR_SIZES[value_type]
    entries = []
    for _ in range(tensor_count):
        name_end = skip_string(pos)
        name = bytes(blob[pos + 8 : name_end]).decode()
        (dims,) = struct.unpack_from("<I", blob, name_end)
        shape = struct.unpack_from(f"<{dims}Q", blob, name_end + 4)
        ggml_type, offset = struct.unpack_from("<IQ", blob, name_end + 4 + 8 * dims)
        pos = name_end + 4 + 8 * dims + 12
        entries.append((name, tuple(reversed(shape)), ggml_type, offset))  # ggml lists the fastest dim first
    return entries, -(-pos // alignment) * alignment


def _gguf_tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(llama.cpp name, float32 array in torch order) for every tensor, dequantized one at a time."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    blob = np.memmap(path, mode="r", dtype=np.uint8)
    entries, data_start = _gguf_tensor_table(blob)
    for name, shape, type_id, offset in entries:
        qtype = GGMLQuantizationType(type_id)
        block_size, block_bytes = GGML_QUANT_SIZES[qtype]
        rows, cols = math.prod(shape[:-1]), shape[-1]
        nbytes = rows * cols // block_size * block_bytes
        raw = blob[data_start + offset : data_start + offset + nbytes]
        if len(raw) != nbytes:
            raise ModelLoadError(f"{path.name} is truncated: tensor {name!r} runs past the end of the file")
        if qtype == GGMLQuantizationType.F32:
            data = np.array(raw.view(np.float32))
        elif qtype == GGMLQuantizationType.F16:
            data = raw.view(np.float16).astype(np.float32)
        elif qtype == GGMLQuantizationType.BF16:
            data = torch.from_numpy(np.array(raw)).view(torch.bfloat16).float().numpy()
        else:
            data = dequantize(raw.reshape(rows, -1), qtype)
        yield name, data.reshape(shape)


def open_gguf(path: Path):
    """(transformers config, tokenizer, iterator of (HF name, tensor)) for a GGUF file."""
    from transformers.integrations.gguf import read_gguf_metadata

    meta, names = read_gguf_metadata(str(path))
    config = _gguf_config(meta, set(names))
    tokenizer = gguf_tokenizer(path)
    arch = meta["general.architecture"]
    layer_names = _GEMMA3_LAYER_NAMES if arch == "gemma3" else _GGUF_LAYER_NAMES

    def weights() -> Iterator[tuple[str, torch.Tensor]]:
        experts: dict[str, dict[str, np.ndarray]] = {}
        for gguf_name, data in _gguf_tensors(path):
            base, _, kind = gguf_name.rpartition(".")  # kind: weight / bias
            if base.startswith("blk."):
                _, layer, short = base.split(".", 2)
                if short in ("ffn_gate_exps", "ffn_up_exps"):
                    experts.setdefault(layer, {})[short] = data
                    continue
                if short not in layer_names:
                    raise ModelLoadError(f"unexpected tensor {gguf_name!r} in {path.name}")
                name = f"model.layers.{layer}.{layer_names[short]}"
                if arch == "llama" and short == "attn_q":
                    data = _unpermute(data, config.num_attention_heads)
                elif arch == "llama" and short == "attn_k":
                    data = _unpermute(data, config.num_key_value_heads)
            elif base in _GGUF_GLOBAL_NAMES:
                name = _GGUF_GLOBAL_NAMES[base]
            else:
                continue  # e.g. rope_freqs, which the config already describes
            if arch == "gemma3" and base.endswith("norm"):
                data = data - 1.0  # llama.cpp stores Gemma's (1 + weight)
            yield f"{name}.{kind}", torch.from_numpy(np.ascontiguousarray(data))
        for layer, pair in experts.items():
            gate_up = np.concatenate([pair["ffn_gate_exps"], pair["ffn_up_exps"]], axis=1)
            yield f"model.layers.{layer}.mlp.experts.gate_up_proj", torch.from_numpy(gate_up)

    return config, tokenizer, weights()
