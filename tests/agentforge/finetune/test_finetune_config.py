"""One config for every method: YAML or Python, unknown keys refused by name."""

import pytest

from agentforge.cli import main
from agentforge.finetune import ConfigError, FinetuneConfig


def test_yaml_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "run.yaml").write_text("method: dpo\ndataset: data/pairs.jsonl\noutput_dir: out\nlora:\n  r: 4\n")
    config = FinetuneConfig.of(tmp_path / "run.yaml")
    assert config.method == "dpo" and config.lora.r == 4
    assert config.dataset == tmp_path / "data" / "pairs.jsonl" and config.output_dir == tmp_path / "out"


def test_unknown_keys_and_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat'.*known:.*learning_rate"):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": "o", "learning_rat": 1e-4})
    with pytest.raises(ConfigError, match=r"unknown key 'lora.rank'.*known: alpha, dropout, r"):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": "o", "lora": {"rank": 8}})
    with pytest.raises(ConfigError, match="method"):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": "o", "method": "rlhf"})
    with pytest.raises(ConfigError, match="dataset: Field required"):
        FinetuneConfig.of({"output_dir": "o"})
    with pytest.raises(ConfigError, match="format"):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": "o", "format": "csv"})


def test_the_cli_reports_a_bad_config(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("dataset: d.jsonl\noutput_dir: out\nepochs: -1\n")
    assert main(["finetune", "run", str(tmp_path / "run.yaml")]) == 2
    assert "epochs" in capsys.readouterr().err
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert main(["finetune", "run", str(tmp_path / "list.yaml")]) == 2
    assert "mapping" in capsys.readouterr().err


def test_gguf_export_refuses_what_it_cannot_write(tmp_path, tiny_llama_dir):
    from agentforge.engine import ModelLoadError
    from agentforge.finetune import export_gguf

    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}')
    with pytest.raises(ModelLoadError, match=r"GGUF export supports \['LlamaForCausalLM'\], not Qwen2ForCausalLM"):
        export_gguf(qwen, tmp_path / "q.gguf", "smollm2-135m")
    with pytest.raises(ModelLoadError, match="is a Hugging Face folder"):
        export_gguf(tiny_llama_dir, tmp_path / "t.gguf", tiny_llama_dir)
    with pytest.raises(ModelLoadError, match="does not match the base"):
        export_gguf(tiny_llama_dir, tmp_path / "t.gguf", "smollm2-135m")
