"""Incremental detokenization with stop strings.

Text is decoded token by token with `tokenizers.decoders.DecodeStream`, which never emits half a
UTF-8 character. Stop strings are searched in the newly decoded tail; until a sequence finishes,
the last `len(longest stop) - 1` characters are held back, so a stop string is never streamed in
part. `emit()` returns exactly the text not yet emitted, so the deltas concatenate to the final text.
"""

from __future__ import annotations

from tokenizers.decoders import DecodeStream

from .protocol import SamplingParams

_PREFIX_TOKENS = 4  # prompt tokens the stream starts from, so the first output token decodes in context


class Detokenizer:
    def __init__(self, tokenizer, params: SamplingParams, prompt_token_ids: list[int]) -> None:
        self.backend = tokenizer.backend_tokenizer
        self.stream = DecodeStream(ids=prompt_token_ids[-_PREFIX_TOKENS:], skip_special_tokens=params.skip_special_tokens)
        self.stops = params.stop
        self.include_stop = params.include_stop_str_in_output
        self.holdback = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self.emitted = 0

    def add(self, token_id: int) -> str | None:
        """Decode one token; return the stop string it completed, if any (the text is cut there)."""
        piece = self.stream.step(self.backend, token_id)
        if not piece:
            return None
        search_from = max(0, len(self.text) - self.holdback)
        self.text += piece
        found = None
        for stop in self.stops:
            i = self.text.find(stop, search_from)
            if i != -1 and (found is None or i < found[0]):
                found = (i, stop)
        if found is None:
            return None
        i, stop = found
        self.text = self.text[: i + len(stop) if self.include_stop else i]
        return stop

    def emit(self, finished: bool) -> str:
        """The text that is safe to show now and was not shown before."""
        end = len(self.text) if finished else max(self.emitted, len(self.text) - self.holdback)
        delta = self.text[self.emitted : end]
        self.emitted = end
        return delta

    @property
    def emitted_text(self) -> str:
        return self.text[: self.emitted]
