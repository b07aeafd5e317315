"""Model resolution and loading: aliases, HF folders, speed, and clear errors for bad files."""

from __future__ import annotations

import time

import pytest
import torch

from agentforge.engine import LLM, ModelLoadError, ModelNotFoundError, SamplingParams, load_model, resolve_model


def test_alias_resolves_to_the_packaged_gguf():
    path = resolve_model("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.exists()


def test_assembled_alias_resolves_to_a_gguf():
    path = resolve_model("gemma3-270m")
    assert path.suffix == ".gguf" and path.stat().st_size > 200_000_000


def test_unknown_alias_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="smollm2-135m"):
        resolve_model("gpt-17-ultra")


def test_smollm2_gguf_loads_in_seconds(smollm2_path):
    start = time.perf_counter()
    loaded = load_model(smollm2_path)
    elapsed = time.perf_counter() - start
    config = loaded.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads) == (30, 576, 3)
    assert loaded.tokenizer.chat_template and loaded.eos_token_ids == {2}
    assert elapsed < 15  # transformers' GGUF path takes ~20 s here; ours ~3 s


def test_corrupt_gguf_files_raise_model_load_error(tmp_path, smollm2_path):
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 100)
    with pytest.raises(ModelLoadError, match="garbage.gguf"):
        load_model(garbage)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(smollm2_path.read_bytes()[: 20_000_000])
    with pytest.raises(ModelLoadError):
        load_model(truncated)


def test_folder_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(tmp_path)


def test_hf_folder_loads_and_chats(tiny_llama_dir):
    llm = LLM(tiny_llama_dir)
    out = llm.chat([{"role": "user", "content": "hi"}], SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))
    assert len(out[0].outputs[0].token_ids) == 5


def test_a_pre_quantized_checkpoint_is_refused_by_name(tiny_llama_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "fp8"
    shutil.copytree(tiny_llama_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="fp8 weights"):
        load_model(folder)


def test_a_bfloat16_model_keeps_rope_exact_far_into_the_context():
    """RoPE's frequencies stay float32 in a bfloat16 model: rounded, their angles at position 30000
    would be off by radians."""
    from pathlib import Path

    gguf = Path(__file__).parent / "data" / "gguf" / "llama3" / "model.gguf"
    exact, half = load_model(gguf, torch.float32).model, load_model(gguf, torch.bfloat16).model
    positions = torch.tensor([30000])
    cos, sin = exact.model.rotary_emb(positions, torch.float32)
    half_cos, half_sin = half.model.rotary_emb(positions, torch.float32)
    assert half.lm_head.weight.dtype == torch.bfloat16
    assert (cos - half_cos).abs().max() < 1e-4 and (sin - half_sin).abs().max() < 1e-4
