"""Fine-tuning: SFT (full or LoRA), DPO, KTO and GRPO (rollouts from the engine) with TRL on the
models the engine runs, from one config, on data rendered exactly as the engine renders it;
adapters the engine serves side by side."""

from agentforge.engine.lora import adapter_meta

from .config import ConfigError, FinetuneConfig, LoraSettings
from .data import FORMATS, Conversation, Dataset, DatasetError, Feedback, Preference, Prompt, read_dataset
from .export import merge_adapter
from .gguf_export import export_gguf
from .train import FinetuneResult, finetune

__all__ = ["FORMATS", "ConfigError", "Conversation", "Dataset", "DatasetError", "Feedback", "FinetuneConfig",
           "FinetuneResult", "LoraSettings", "Preference", "Prompt", "adapter_meta", "export_gguf", "finetune", "merge_adapter",
           "read_dataset"]
