"""Multi-LoRA serving: adapters over one base in one batch, each request exactly as if run alone,
and the same greedy output as the adapter merged into the base in transformers."""

import json

import pytest
import torch

from agentforge.engine import LLM, InvalidRequestError, ModelLoadError, SamplingParams


@pytest.fixture(scope="module")
def adapters(tiny_llama_dir, tmp_path_factory, make_lora_adapter):
    root = tmp_path_factory.mktemp("adapters")
    return {f"a{i}": (root / f"a{i}", make_lora_adapter(tiny_llama_dir, root / f"a{i}", seed=i)) for i in range(3)}


@pytest.fixture(scope="module")
def llm(tiny_llama_dir, adapters):
    return LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 26, lora_adapters={n: str(p) for n, (p, _) in adapters.items()})


def greedy(n=10, **kw):
    return SamplingParams(temperature=0, max_tokens=n, ignore_eos=True, **kw)


def test_adapter_output_equals_the_merged_model_in_transformers(llm, adapters, smollm2_tokenizer):
    prompt = smollm2_tokenizer.encode("The quick brown fox jumps over")
    for name, (_, merged) in adapters.items():
        ours = llm.generate(prompt, greedy(lora=name))[0].outputs[0].token_ids
        theirs = merged.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None)
        assert ours == theirs[0, len(prompt):].tolist(), name


def test_a_mixed_batch_gives_each_request_its_output_alone(llm, smollm2_tokenizer):
    prompts = [smollm2_tokenizer.encode(f"Story number {i} begins with a") for i in range(8)]
    choices = [None, "a0", "a1", "a2", None, "a2", "a1", "a0"]
    together = llm.generate(prompts, [greedy(lora=c) for c in choices])
    alone = [llm.generate(p, greedy(lora=c))[0] for p, c in zip(prompts, choices)]
    assert [o.outputs[0].token_ids for o in together] == [o.outputs[0].token_ids for o in alone]
    outputs = {tuple(o.outputs[0].token_ids) for o in together[:4]}
    assert len(outputs) == 4, "base and three adapters should differ"


def test_the_prefix_cache_keeps_adapters_apart(llm, smollm2_tokenizer):
    prompt = smollm2_tokenizer.encode("A long shared prefix that fills more than one block of the cache " * 3)
    base_first = llm.generate(prompt, greedy())[0].outputs[0].token_ids
    adapter = llm.generate(prompt, greedy(lora="a0"))[0]
    assert adapter.outputs[0].token_ids != base_first
    assert adapter.usage.cached_tokens == 0  # the base's blocks are not the adapter's
    again = llm.generate(prompt, greedy(lora="a0"))[0]
    assert again.usage.cached_tokens > 0 and again.outputs[0].token_ids == adapter.outputs[0].token_ids


def test_load_unload_at_run_time(llm, adapters, smollm2_tokenizer):
    path, _ = adapters["a1"]
    llm.engine.load_lora("extra", path)
    assert "extra" in llm.engine.loras
    with pytest.raises(InvalidRequestError, match="already loaded"):
        llm.engine.load_lora("extra", path)
    llm.engine.unload_lora("extra")
    with pytest.raises(InvalidRequestError, match="no LoRA adapter named 'extra'.*a0"):
        llm.generate([1, 2, 3], greedy(lora="extra"))
    with pytest.raises(InvalidRequestError, match="no adapter named"):
        llm.engine.unload_lora("extra")
    request = llm.engine.make_request([1, 2, 3], greedy(lora="a1"))
    llm.engine.add(request)
    with pytest.raises(InvalidRequestError, match="in use"):
        llm.engine.unload_lora("a1")
    llm.engine.abort_request(request.request_id)
    assert llm.stats().kv_blocks_used == 0


def test_bad_adapters_are_refused_clearly(llm, tmp_path, smollm2_tokenizer, make_lora_adapter):
    from transformers import LlamaConfig, LlamaForCausalLM

    with pytest.raises(ModelLoadError, match="no adapter_config.json"):
        llm.engine.load_lora("x", tmp_path)
    other = tmp_path / "other-base"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smollm2_tokenizer), hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4)).save_pretrained(other)
    make_lora_adapter(other, tmp_path / "foreign", seed=0)
    with pytest.raises(ModelLoadError, match="another base model"):
        llm.engine.load_lora("foreign", tmp_path / "foreign")
    (tmp_path / "foreign" / "agentforge.json").write_text(json.dumps({"base_fingerprint": "0" * 16, "base_model": "x"}))
    with pytest.raises(ModelLoadError, match="trained for another base model \\('x'\\)"):
        llm.engine.load_lora("foreign", tmp_path / "foreign")
    with pytest.raises(InvalidRequestError, match="adapter name"):
        llm.engine.load_lora("base", tmp_path / "foreign")
    assert set(llm.engine.loras) == {"a0", "a1", "a2"}
