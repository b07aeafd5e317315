"""Rows rendered exactly as the engine renders them at inference: its chat template, its tool prompt
and call format (`agentforge.engine.tool_format`), so what a model learns here is what it sees there."""

from __future__ import annotations

from dataclasses import dataclass

from agentforge.engine.protocol import ChatOptions
from agentforge.engine.tool_format import ToolCalling

from .data import Conversation, Feedback, Preference, Prompt


@dataclass(slots=True)
class Renderer:
    tokenizer: object
    tool_format: str | None = None  # None: the format the engine detects from the chat template

    def messages(self, messages: list[dict], tools: list[dict] | None) -> tuple[list[dict], dict]:
        """Messages and template kwargs, tools written into the prompt the way the engine does."""
        calling = ToolCalling.create(ChatOptions(tools=tools), self.tokenizer.chat_template, self.tool_format)
        if calling is None:
            return messages, {}
        return calling.render(messages)

    def text(self, messages: list[dict], kwargs: dict, generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt,
                                                  **kwargs)

    def conversation(self, row: Conversation, max_length: int) -> dict:
        """`input_ids` and `assistant_masks` (1 on the assistant turns' tokens, end-of-turn token included)."""
        messages, kwargs = self.messages(row.messages, row.tools)
        full = self.text(messages, kwargs, False)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(self.text(messages[:i], kwargs, True))
            end = len(self.text(messages[: i + 1], kwargs, False).rstrip())  # up to the end-of-turn token
            spans.append((start, end))
        encoded = self.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"][:max_length]
        mask = [int(any(s <= a < e for s, e in spans)) for a, _ in encoded["offset_mapping"][: len(ids)]]
        if not any(mask):
            raise ValueError(f"no assistant token within max_length={max_length} tokens")
        return {"input_ids": ids, "assistant_masks": mask}

    def preference(self, row: Preference) -> dict:
        """Prompt text (generation prompt included) and each reply with the template's end of turn."""
        prompt, (chosen, rejected) = self._replies(row.prompt, row.tools, [row.chosen, row.rejected])
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}

    def feedback(self, row: Feedback) -> dict:
        """Prompt text and the judged reply, rendered as `preference` renders them, with its label."""
        prompt, (completion,) = self._replies(row.prompt, row.tools, [row.completion])
        return {"prompt": prompt, "completion": completion, "label": row.label}

    def _replies(self, prompt: list[dict], tools: list[dict] | None, answers: list[list[dict]]) -> tuple[str, list[str]]:
        messages, kwargs = self.messages(prompt, tools)
        text = self.text(messages, kwargs, True)
        replies = []
        for answer in answers:
            rendered, _ = self.messages(prompt + answer, tools)
            replies.append(self.text(rendered, kwargs, False)[len(text):].rstrip())
        return text, replies

    def prompt(self, row: Prompt, max_length: int) -> str:
        """The prompt as the engine renders it, generation prompt included."""
        messages, kwargs = self.messages(row.prompt, None)
        text = self.text(messages, kwargs, True)
        if len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) > max_length:
            raise ValueError(f"the prompt is longer than max_length={max_length} tokens")
        return text
