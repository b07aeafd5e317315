"""GRPO on a tiny random-weight Llama: rollouts from the engine follow the policy's weights, a run
trains and hands back an adapter, and reward functions in every accepted shape."""

import json
import logging
from types import SimpleNamespace

import pytest
import torch

from agentforge.engine import LLM, InvalidRequestError, SamplingParams
from agentforge.finetune import ConfigError, FinetuneConfig, finetune
from agentforge.finetune.rewards import reward_functions
from agentforge.finetune.rollouts import POLICY, EngineRollouts


def _trainer(model, step, n):
    """What `EngineRollouts` reads of TRL's GRPOTrainer."""
    return SimpleNamespace(model=model, state=SimpleNamespace(global_step=step), num_generations=n,
                           num_generations_eval=n)


def _greedy_config(tmp_path):
    return FinetuneConfig(method="grpo", dataset=tmp_path / "x.jsonl", output_dir=tmp_path, rewards=["m:f"],
                          num_generations=2, batch_size=2, max_completion_length=6, temperature=1e-6, max_length=64)


def _hf_greedy(model, prompt_ids, steps):
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=steps, do_sample=False, eos_token_id=None)
    return out[0, len(prompt_ids):].tolist()


def test_engine_rollouts_follow_the_policys_lora_weights_step_by_step(tiny_llama_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    policy = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32),
                            LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    policy.eval()
    rollouts = EngineRollouts(tiny_llama_dir, policy.config, _greedy_config(tmp_path))
    text = rollouts.llm.tokenizer.apply_chat_template([{"role": "user", "content": "hello there"}], tokenize=False,
                                                      add_generation_prompt=True)
    prompt_ids = rollouts.llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    seen = []
    for step in range(2):
        if step:  # an optimizer step: the policy's LoRA weights move
            with torch.no_grad():
                for name, param in policy.named_parameters():
                    if "lora_B" in name:
                        param.add_(torch.randn_like(param) * 0.5)
        out = rollouts([text, text], _trainer(policy, step, 2))
        assert out["prompt_ids"] == [prompt_ids, prompt_ids]
        expected = _hf_greedy(policy, prompt_ids, 6)
        assert out["completion_ids"] == [expected, expected]
        with torch.no_grad():  # the engine's sampled-token logprobs are the policy's own
            ids = torch.tensor([prompt_ids + expected])
            logps = policy(ids).logits[0, len(prompt_ids) - 1:-1].log_softmax(-1)
        theirs = logps.gather(1, torch.tensor(expected)[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(out["logprobs"][0]), theirs, atol=1e-4, rtol=1e-4)
        seen.append(expected)
    assert seen[0] != seen[1]
    assert list(rollouts.llm.engine.loras) == [POLICY]


def test_engine_rollouts_of_a_full_fine_tune_copy_every_weight_and_drop_stale_prefixes(tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    rollouts = EngineRollouts(tiny_llama_dir, policy.config, _greedy_config(tmp_path))
    text = "a prompt long enough to fill a few KV blocks of the prefix cache, " * 3
    prompt_ids = rollouts.llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    first = rollouts([text, text], _trainer(policy, 0, 2))["completion_ids"][0]
    assert first == _hf_greedy(policy, prompt_ids, 6)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    second = rollouts([text, text], _trainer(policy, 1, 2))["completion_ids"][0]
    assert second == _hf_greedy(policy, prompt_ids, 6) != first
    with pytest.raises(ValueError, match="each prompt 2 times"):
        rollouts(["a", "b"], _trainer(policy, 1, 2))
    with pytest.raises(InvalidRequestError, match="does not match a parameter"):
        rollouts.llm.engine.load_weights({"model.norm.weight": torch.zeros(3)})


def test_grpo_trains_on_engine_rollouts_and_the_engine_serves_the_adapter(tiny_llama_dir, tmp_path, write_jsonl, caplog):
    rows = [{"prompt": f"Tell me about topic {i}.", "topic": i} for i in range(8)]
    data = write_jsonl(tmp_path / "prompts.jsonl", rows + [{"prompt": ""}, {"chosen": "x"}])
    seen = []

    def short(completions, topic, **_):  # TRL's batch shape, with the rows' other keys
        seen.append(list(topic))
        return [1.0 - len(c) / 200 for c in completions]

    def fussy(completion, topic):  # a verifier that fails on one topic: that row gets no reward
        if topic == 3:
            raise RuntimeError("cannot check topic 3")
        return " " in completion

    with caplog.at_level(logging.WARNING):
        result = finetune({"method": "grpo", "model": str(tiny_llama_dir), "dataset": str(data),
                           "output_dir": str(tmp_path / "out"), "rewards": [short, fussy], "reward_weights": [1.0, 0.5],
                           "num_generations": 4, "batch_size": 8, "max_completion_length": 8, "max_steps": 3,
                           "learning_rate": 1e-2, "logging_steps": 1, "lora": {"r": 4, "dropout": 0.0}})
    assert [s.line for s in result.skipped] == [9, 10]
    assert "reward fussy failed" in caplog.text and "cannot check topic 3" in caplog.text
    steps = [h for h in result.log_history if "reward" in h]
    assert len(steps) == 3 and all("rewards/short/mean" in h and "rewards/fussy/mean" in h for h in steps)
    assert all(len(batch) == 8 and len(set(batch)) == 2 for batch in seen)  # 2 prompts × 4 samples a step
    llm = LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24, lora_adapters={"grpo": str(result.output)})
    tuned = llm.generate("Tell me", SamplingParams(temperature=0, max_tokens=8, ignore_eos=True, lora="grpo"))
    assert len(tuned[0].outputs[0].token_ids) == 8
    assert json.loads((result.output / "agentforge.json").read_text())["method"] == "grpo"


def test_rewards_in_every_shape_and_what_fails(tmp_path, caplog):
    (tmp_path / "checks.py").write_text(
        "def exact(completion, answer):\n    return completion.strip() == str(answer)\n"
        "def lengths(prompts, completions, **kwargs):\n    return [len(c) for c in completions]\n"
        "def broken(prompts, completions, **kwargs):\n    return [1 / (c != 'boom') for c in completions]\n"
        "not_callable = 3\n")
    config = tmp_path / "grpo.yaml"
    config.write_text("method: grpo\ndataset: d.jsonl\noutput_dir: out\nbatch_size: 4\nnum_generations: 2\n"
                      "rewards: ['checks.py:exact', 'checks.py:lengths', 'checks.py:broken', 'json:dumps']\n")
    exact, lengths, broken, _ = reward_functions(FinetuneConfig.of(config).rewards)
    prompts, completions = ["p1", "p2", "p3"], ["7", " 8 ", "boom"]
    assert exact(prompts, completions, answer=[7, 9, 1]) == [1.0, 0.0, 0.0]
    assert lengths(prompts, completions) == [1.0, 3.0, 4.0]
    with caplog.at_level(logging.WARNING):
        assert broken(prompts, completions) == [1.0, 1.0, None]  # only the failing row loses its reward
    assert "reward broken failed" in caplog.text
    assert [f.__name__ for f in (exact, lengths, broken)] == ["exact", "lengths", "broken"]

    def wrong_count(prompts, completions, **_):
        return [1.0] * (len(completions) + 1)

    assert reward_functions([wrong_count])[0](["a", "b"], ["x", "y"]) == [None, None]
    for spec, message in [("checks.py:missing", "could not be loaded"), ("no_such_module:f", "could not be loaded"),
                          ("nofunction", "expected a callable"), ({"judge": "r", "temperature": 1}, "LLM judge"),
                          ("checks.py:not_callable", "not callable")]:
        if spec == "checks.py:not_callable" or spec == "checks.py:missing":
            spec = f"{tmp_path}/{spec}"
        with pytest.raises(ConfigError, match=message):
            reward_functions([spec])


@pytest.mark.parametrize("settings, message", [
    ({"method": "grpo"}, "needs at least one reward"),
    ({"method": "grpo", "rewards": ["m:f"], "batch_size": 6, "num_generations": 4}, "multiple of num_generations"),
    ({"method": "grpo", "rewards": ["m:f", "m:g"], "reward_weights": [1.0]}, "1 reward_weights for 2 rewards"),
    ({"method": "sft", "rewards": ["m:f"]}, "for methods 'grpo' and 'ppo'"),
    ({"method": "rlhf", "rewards": ["m:f"]}, "method"),
])
def test_grpo_settings_are_checked_up_front(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": str(tmp_path), **settings})


def test_grpo_refuses_rows_that_are_not_prompts(tmp_path, facts_rows, write_jsonl):
    from agentforge.finetune import DatasetError

    data = write_jsonl(tmp_path / "chat.jsonl", facts_rows[:4])
    with pytest.raises(DatasetError, match="method 'grpo' needs prompt rows"):
        finetune({"method": "grpo", "dataset": str(data), "output_dir": str(tmp_path / "o"), "rewards": [len],
                  "batch_size": 8})


def test_grpo_from_a_yaml_file_with_a_reward_beside_it(tiny_llama_dir, tmp_path, write_jsonl, capsys):
    from agentforge.cli import main

    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Count to {i}.", "upto": i} for i in range(4)])
    (tmp_path / "checks.py").write_text("def counts(completion, upto):\n    return str(upto) in completion\n")
    settings = (f"method: grpo\nmodel: {tiny_llama_dir}\ndataset: prompts.jsonl\n"
                "num_generations: 2\nbatch_size: 4\nmax_completion_length: 4\nmax_steps: 1\n")
    (tmp_path / "grpo.yaml").write_text(settings + "output_dir: out\nrewards: ['checks.py:counts']\n")
    assert main(["finetune", "run", str(tmp_path / "grpo.yaml")]) == 0
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").exists()
    (tmp_path / "bad.yaml").write_text(settings + "output_dir: bad\nrewards: ['checks.py:missing']\n")
    assert main(["finetune", "run", str(tmp_path / "bad.yaml")]) == 2  # refused before the model loads
    assert "could not be loaded" in capsys.readouterr().err and not (tmp_path / "bad").exists()
