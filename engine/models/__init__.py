"""Model architectures, keyed by the `architectures` name in a Hugging Face config."""

from .deepseek_v3 import DeepseekV3ForCausalLM
from .gemma import Gemma2ForCausalLM, Gemma3ForCausalLM
from .hunyuan import HunYuanDenseV1ForCausalLM, HunYuanMoEV1ForCausalLM
from .idefics3 import Idefics3ForConditionalGeneration
from .llama import LlamaForCausalLM
from .llama4 import Llama4ForCausalLM
from .ministral3 import Ministral3ForCausalLM
from .mixtral import MixtralForCausalLM
from .qwen import Qwen2ForCausalLM, Qwen2MoeForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM
from .qwen2_5_vl import Qwen2_5_VLForConditionalGeneration
from .qwen3_vl import Qwen3VLForConditionalGeneration
from .seed_oss import SeedOssForCausalLM

ARCHITECTURES = {
    "LlamaForCausalLM": LlamaForCausalLM,
    "Llama4ForCausalLM": Llama4ForCausalLM,
    "MistralForCausalLM": LlamaForCausalLM,
    "Ministral3ForCausalLM": Ministral3ForCausalLM,
    "Qwen2ForCausalLM": Qwen2ForCausalLM,
    "Qwen3ForCausalLM": Qwen3ForCausalLM,
    "MixtralForCausalLM": MixtralForCausalLM,
    "Gemma2ForCausalLM": Gemma2ForCausalLM,
    "Gemma3ForCausalLM": Gemma3ForCausalLM,
    "Qwen2MoeForCausalLM": Qwen2MoeForCausalLM,
    "Qwen3MoeForCausalLM": Qwen3MoeForCausalLM,
    "SeedOssForCausalLM": SeedOssForCausalLM,
    "HunYuanDenseV1ForCausalLM": HunYuanDenseV1ForCausalLM,
    "HunYuanMoEV1ForCausalLM": HunYuanMoEV1ForCausalLM,
    "DeepseekV3ForCausalLM": DeepseekV3ForCausalLM,
    "Idefics3ForConditionalGeneration": Idefics3ForConditionalGeneration,
    "Qwen2_5_VLForConditionalGeneration": Qwen2_5_VLForConditionalGeneration,
    "Qwen3VLForConditionalGeneration": Qwen3VLForConditionalGeneration,
}

__all__ = ["ARCHITECTURES", *(cls.__name__ for cls in set(ARCHITECTURES.values()))]
