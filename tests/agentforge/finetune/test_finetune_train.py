"""Training on a tiny random-weight Llama: full SFT, LoRA SFT served by the engine exactly as
merged, DPO, and a killed run that resumes to the same loss."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from agentforge.engine import LLM, ModelLoadError, SamplingParams
from agentforge.finetune import DatasetError, finetune


def losses(result):
    return [h["loss"] for h in result.log_history if "loss" in h]


def test_full_sft_lowers_the_loss_and_the_engine_loads_the_result(tiny_llama_dir, facts_rows, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows + [{"messages": []}])
    result = finetune({"model": str(tiny_llama_dir), "adapter": "full", "dataset": str(data),
                       "output_dir": str(tmp_path / "out"), "max_steps": 12, "learning_rate": 3e-3,
                       "batch_size": 8, "logging_steps": 4})
    first, *_, last = losses(result)
    assert last < first * 0.8
    assert [s.line for s in result.skipped] == [49]
    assert result.metrics["num_input_tokens_seen"] > 0
    assert all("tokens_per_second" in h for h in result.log_history if "loss" in h)
    out = LLM(str(result.output), kv_cache_bytes=1 << 24).chat(facts_rows[0]["messages"][:1],
                                                                SamplingParams(temperature=0, max_tokens=5))
    assert out[0].outputs[0].token_ids


def test_lora_adapter_in_the_engine_equals_the_merged_folder(tiny_llama_dir, facts_rows, tmp_path, smollm2_tokenizer, write_jsonl):
    from transformers import AutoModelForCausalLM

    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows)
    result = finetune({"model": str(tiny_llama_dir), "dataset": str(data), "output_dir": str(tmp_path / "out"),
                       "max_steps": 6, "learning_rate": 5e-3, "lora": {"r": 8, "dropout": 0.0}, "merge": True})
    assert (result.output / "adapter_model.safetensors").exists() and result.merged is not None
    llm = LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24, lora_adapters={"facts": str(result.output)})
    merged = AutoModelForCausalLM.from_pretrained(result.merged, dtype=torch.float32)
    prompt = llm.engine.make_chat_request(facts_rows[3]["messages"][:1]).prompt_token_ids
    ours = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True, lora="facts"))
    base = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))
    theirs = merged.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, eos_token_id=None)
    assert ours[0].outputs[0].token_ids == theirs[0, len(prompt):].tolist()
    assert ours[0].outputs[0].token_ids != base[0].outputs[0].token_ids
    merged_llm = LLM(str(result.merged), kv_cache_bytes=1 << 24)
    assert merged_llm.generate(prompt, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))[0].outputs[0].token_ids \
        == ours[0].outputs[0].token_ids


def _pair(i):
    return {"prompt": f"Request {i}: please confirm.", "chosen": f"Confirmed, request {i} is done.",
            "rejected": f"I refuse request {i}."}


def _preference_accuracy(model, tokenizer, held_out) -> float:
    """How often the model gives the chosen reply a higher mean token log-probability than the rejected one."""
    from agentforge.finetune import read_dataset
    from agentforge.finetune._render import Renderer

    renderer, right = Renderer(tokenizer), 0
    rows = read_dataset(held_out).rows
    for row in rows:
        texts = renderer.preference(row)
        scores = []
        for reply in (texts["chosen"], texts["rejected"]):
            prompt = tokenizer(texts["prompt"], add_special_tokens=False).input_ids
            ids = torch.tensor([prompt + tokenizer(reply, add_special_tokens=False).input_ids])
            with torch.no_grad():
                logp = model(ids).logits[0, :-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
            scores.append(logp[len(prompt) - 1:].mean().item())
        right += scores[0] > scores[1]
    return right / len(rows)


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_preference_training_raises_held_out_preference_accuracy(method, tiny_llama_dir, tmp_path, smollm2_tokenizer,
                                                                  write_jsonl):
    """DPO learns from pairs; KTO from unpaired replies, each marked good or bad."""
    from transformers import AutoModelForCausalLM

    from agentforge.finetune.base import load_base

    if method == "dpo":
        rows = [_pair(i) for i in range(32)]
    else:
        rows = [{"prompt": p["prompt"], "completion": p["chosen" if i % 2 else "rejected"], "label": bool(i % 2)}
                for i, p in enumerate(map(_pair, range(64)))]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    held_out = write_jsonl(tmp_path / "held.jsonl", [_pair(i) for i in range(100, 116)])
    before = _preference_accuracy(load_base(str(tiny_llama_dir)).model.eval(), smollm2_tokenizer, held_out)
    result = finetune({"method": method, "model": str(tiny_llama_dir), "dataset": str(train),
                       "output_dir": str(tmp_path / "out"), "max_steps": 12, "learning_rate": 5e-3, "batch_size": 8,
                       "lora": {"r": 8, "dropout": 0.0}, "merge": True})
    merged = AutoModelForCausalLM.from_pretrained(result.merged, dtype=torch.float32).eval()
    after = _preference_accuracy(merged, smollm2_tokenizer, held_out)
    print(f"{method}: held-out preference accuracy {before:.2f} -> {after:.2f}")
    assert after > before and after >= 0.9


def test_rows_of_the_wrong_kind_or_none_at_all_fail_before_loading(tmp_path, write_jsonl):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}])
    with pytest.raises(DatasetError, match="method 'sft' needs conversation rows"):
        finetune({"model": "no-such-model", "dataset": str(pairs), "output_dir": str(tmp_path / "o")})
    empty = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(DatasetError, match="no valid rows: line 1"):
        finetune({"model": "no-such-model", "dataset": str(empty), "output_dir": str(tmp_path / "o")})


def test_an_adapter_for_another_base_is_refused(tiny_llama_dir, facts_rows, tmp_path, smollm2_tokenizer, write_jsonl):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other"
    torch.manual_seed(1)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smollm2_tokenizer), hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).save_pretrained(other)
    smollm2_tokenizer.save_pretrained(other)
    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows[:8])
    result = finetune({"model": str(other), "dataset": str(data), "output_dir": str(tmp_path / "out"), "max_steps": 1})
    with pytest.raises(ModelLoadError, match="trained for another base model"):
        LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24, lora_adapters={"x": str(result.output)})
    from agentforge.finetune import merge_adapter
    from agentforge.finetune.base import load_base

    with pytest.raises(ModelLoadError, match="another base model"):
        merge_adapter(result.output, tmp_path / "merged", base=load_base(str(tiny_llama_dir)))


def test_a_killed_run_resumes_and_ends_at_the_same_loss(tiny_llama_dir, facts_rows, tmp_path, write_jsonl, caplog):
    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows)
    settings = {"model": str(tiny_llama_dir), "dataset": str(data), "max_steps": 10, "save_steps": 2,
                "logging_steps": 1, "learning_rate": 3e-3, "lora": {"dropout": 0.0}, "save_total_limit": 1}
    straight = finetune({**settings, "output_dir": str(tmp_path / "straight")})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**settings, "output_dir": str(tmp_path / "killed")}))
    proc = subprocess.Popen([sys.executable, "-m", "agentforge.cli", "finetune", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list((tmp_path / "killed").glob("checkpoint-*/trainer_state.json")) and time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "adapter").exists()
    with caplog.at_level(logging.WARNING, "agentforge.finetune"):
        resumed = finetune(config)
    assert "resuming from" in caplog.text and "checkpoint-" in caplog.text  # it did not start over
    assert losses(resumed)[-1] == pytest.approx(losses(straight)[-1], rel=1e-3)


def test_checkpoints_of_a_different_run_are_not_resumed(tiny_llama_dir, facts_rows, tmp_path, write_jsonl):
    from agentforge.finetune import ConfigError

    settings = {"model": str(tiny_llama_dir), "output_dir": str(tmp_path / "out"), "max_steps": 2, "save_steps": 2}
    finetune({**settings, "dataset": str(write_jsonl(tmp_path / "a.jsonl", facts_rows))})
    changed = write_jsonl(tmp_path / "b.jsonl", facts_rows[::-1])
    with pytest.raises(ConfigError, match="different run"):
        finetune({**settings, "dataset": str(changed)})
    with pytest.raises(ConfigError, match="different run"):
        finetune({**settings, "dataset": str(tmp_path / "a.jsonl"), "learning_rate": 1e-2})
    again = finetune({**settings, "dataset": str(tmp_path / "a.jsonl"), "logging_steps": 1})  # same run: resumes
    assert again.output.exists()
    fresh = finetune({**settings, "dataset": str(changed), "resume": False})
    assert fresh.train_rows == len(facts_rows)


def test_qlora_trains_an_adapter_over_a_four_bit_base_that_the_engine_serves(tiny_llama_dir, facts_rows, tmp_path,
                                                                            write_jsonl, monkeypatch):
    import bitsandbytes as bnb

    from agentforge.finetune import train as train_module

    bases = []
    load_base = train_module.load_base
    monkeypatch.setattr(train_module, "load_base", lambda *a, **k: bases.append(load_base(*a, **k)) or bases[-1])
    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows)
    result = finetune({"model": str(tiny_llama_dir), "adapter": "qlora", "dataset": str(data),
                       "output_dir": str(tmp_path / "out"), "max_steps": 10, "learning_rate": 5e-3, "batch_size": 8,
                       "logging_steps": 5, "lora": {"r": 8, "dropout": 0.0}, "merge": True})
    first, *_, last = losses(result)
    assert last < first
    q_proj = bases[0].model.model.layers[0].self_attn.q_proj.base_layer  # PEFT wrapped the layer in place
    assert isinstance(q_proj, bnb.nn.Linear4bit) and q_proj.weight.quant_type == "nf4"
    assert not isinstance(bases[1].model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)  # merged in float32
    llm = LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24, lora_adapters={"q": str(result.output)})
    prompt = llm.engine.make_chat_request(facts_rows[0]["messages"][:1]).prompt_token_ids
    ours = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=6, ignore_eos=True, lora="q"))
    merged = LLM(str(result.merged), kv_cache_bytes=1 << 24).generate(prompt, SamplingParams(temperature=0, max_tokens=6,
                                                                                             ignore_eos=True))
    assert ours[0].outputs[0].token_ids == merged[0].outputs[0].token_ids
