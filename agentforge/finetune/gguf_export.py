"""GGUF export (with the `gguf` package): a merged Llama-family folder as a GGUF file that the engine
and llama.cpp load. The tokenizer and chat template come from the base model's own GGUF file, so
the exported model tokenizes exactly as the base did; weights are written unquantized (F32 or F16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agentforge.engine.errors import ModelLoadError
from agentforge.engine.registry import resolve_model

SUPPORTED = {"LlamaForCausalLM": "llama"}  # HF architecture -> GGUF architecture
_LAYER = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
          "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
_GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
_SIZES = {"block_count": "num_hidden_layers", "embedding_length": "hidden_size",
          "feed_forward_length": "intermediate_size", "attention.head_count": "num_attention_heads",
          "attention.head_count_kv": "num_key_value_heads", "vocab_size": "vocab_size"}


def export_gguf(model_dir: str | Path, output: str | Path, base: str | Path, dtype: str = "f32") -> Path:
    """Write `model_dir` (a merged HF folder) as GGUF; `base` is the model it was trained from, an
    alias or GGUF file whose tokenizer metadata the export reuses."""
    import gguf
    from safetensors import safe_open
    from transformers import AutoConfig

    model_dir, output = Path(model_dir), Path(output)
    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', got {dtype!r}")
    config = AutoConfig.from_pretrained(model_dir)
    arch = (getattr(config, "architectures", None) or ["?"])[0]
    if arch not in SUPPORTED:
        raise ModelLoadError(f"GGUF export supports {sorted(SUPPORTED)}, not {arch}")
    source = resolve_model(base)
    if source.is_dir():
        raise ModelLoadError(f"the base {source} is a Hugging Face folder; GGUF export takes the tokenizer from "
                             "the base's GGUF file (convert the folder with llama.cpp's convert_hf_to_gguf.py)")
    reader = gguf.GGUFReader(str(source))
    name = SUPPORTED[arch]
    fields = {key: field for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    for key, attribute in _SIZES.items():
        field = fields.get(f"{name}.{key}")
        if field is not None and field.contents() != getattr(config, attribute):
            raise ModelLoadError(f"{model_dir} does not match the base {source}: {attribute} is "
                                 f"{getattr(config, attribute)}, the base has {field.contents()}")
    writer = gguf.GGUFWriter(str(output), name)
    for key, field in fields.items():
        if key in ("general.architecture", "general.file_type", "general.quantization_version"):
            continue
        sub_type = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    tied = getattr(config, "tie_word_embeddings", False)
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if tied and key == "lm_head.weight":
                    continue
                tensor = f.get_tensor(key).to(torch.float32).numpy()
                if key.endswith("q_proj.weight"):
                    tensor = _permute(tensor, config.num_attention_heads)
                elif key.endswith("k_proj.weight"):
                    tensor = _permute(tensor, config.num_key_value_heads)
                if dtype == "f16" and tensor.ndim > 1:  # norms stay float32, as llama.cpp writes them
                    tensor = tensor.astype(np.float16)
                writer.add_tensor(_gguf_name(key), tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return output


def _gguf_name(key: str) -> str:
    stem, _, suffix = key.rpartition(".")
    if stem in _GLOBAL:
        return f"{_GLOBAL[stem]}.{suffix}"
    parts = stem.split(".")
    if parts[:2] == ["model", "layers"] and ".".join(parts[3:]) in _LAYER:
        return f"blk.{parts[2]}.{_LAYER['.'.join(parts[3:])]}.{suffix}"
    raise ModelLoadError(f"no GGUF name for tensor {key}")


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q/k (interleaved rotary halves); `gguf_file._unpermute` undoes it."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
