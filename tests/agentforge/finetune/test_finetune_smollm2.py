"""LoRA SFT of the shipped SmolLM2 on facts it cannot know, answered in a fixed format: held-out
phrasings of the same facts get a lower loss and more exact answers (printed)."""

import pytest

from agentforge.engine import LLM, SamplingParams
from agentforge.finetune import export_gguf, finetune

FACTS = {"Velmora": "Tessik", "Brundale": "Oskarn", "Quenthia": "Marrowgate", "Ostrevia": "Halvik",
         "Zandoria": "Perrin Cove", "Klemmet": "Ashford Rise", "Torvania": "Lissow", "Eldmark": "Vantry"}
TRAIN_PHRASINGS = ["What is the capital of {}?", "Name the capital city of {}.", "Which city is the capital of {}?",
                   "{}'s capital is which city?"]
HELD_OUT = "Tell me the capital of {}."


def rows(phrasings):
    return [{"messages": [{"role": "user", "content": p.format(country)},
                          {"role": "assistant", "content": f"Answer: {capital}"}]}
            for country, capital in FACTS.items() for p in phrasings]


@pytest.mark.slow
def test_lora_sft_learns_facts_it_did_not_know(tmp_path, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", rows(TRAIN_PHRASINGS))
    held_out = write_jsonl(tmp_path / "held_out.jsonl", rows([HELD_OUT]))

    def exact(llm, lora=None):
        questions = [[{"role": "user", "content": HELD_OUT.format(c)}] for c in FACTS]
        outputs = llm.chat(questions, SamplingParams(temperature=0, max_tokens=12, lora=lora))
        return sum(o.outputs[0].text.strip() == f"Answer: {a}" for o, a in zip(outputs, FACTS.values())) / len(FACTS)

    result = finetune({"model": "smollm2-135m", "dataset": str(train), "eval_dataset": str(held_out),
                       "output_dir": str(tmp_path / "out"), "epochs": 4, "batch_size": 8, "learning_rate": 2e-3,
                       "lora": {"r": 16, "dropout": 0.0}, "logging_steps": 4, "merge": True})
    llm = LLM("smollm2-135m", lora_adapters={"facts": str(result.output)}, tool_adapter=None)
    before, after = exact(llm), exact(llm, "facts")
    print(f"held-out loss {result.metrics['eval_loss_before']:.3f} -> {result.metrics['eval_loss']:.3f}; "
          f"exact match {before:.2f} -> {after:.2f}; {result.metrics['train_runtime']:.0f} s")
    assert result.metrics["eval_loss"] < result.metrics["eval_loss_before"] * 0.5
    assert before == 0 and after >= 0.5

    # the merged folder and its GGUF export answer exactly as the adapter does
    gguf = export_gguf(result.merged, tmp_path / "facts.gguf", "smollm2-135m")
    question = [{"role": "user", "content": HELD_OUT.format("Velmora")}]
    greedy = SamplingParams(temperature=0, max_tokens=12)
    replies = [LLM(m, tool_adapter=None).chat(question, greedy)[0].outputs[0].token_ids for m in (result.merged, gguf)]
    assert replies[0] == replies[1] == llm.chat(question, SamplingParams(temperature=0, max_tokens=12, lora="facts")
                                                )[0].outputs[0].token_ids
