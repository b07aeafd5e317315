"""Ending constrained output within its token budget, so that it always parses and validates.

A grammar guarantees that every token continues a valid output, not that the output ends before
`max_tokens`: an unbounded string or number can run until the budget cuts it. `Closer` computes
the *closing path* of a sequence — the tokens of the shortest valid ending it can find from where
the output stands: close the open string or number, then the open arrays and objects, writing
the least a schema still requires (its required keys, the smallest values) — by walking a copy of
the sequence's llguidance matcher. The engine checks, before it keeps a sampled token, that the
closing path after it still fits in the budget; when it would not, the sequence follows its
closing path instead (finish_reason "length": the budget forced the ending). A budget too small
for even the closing path of an empty output is refused up front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llguidance
import llguidance.numpy
import torch

from .grammar_mask import unpack_bitmask

# Preferred tokens, by where the JSON stands: the shortest ways to finish a value.
_VALUES = ("0", '""', "{}", "null", "false", "true", '"', "[", "{")
_CLOSE = {"{": "}", "[": "]"}
_SPACE = ("\n", " ")


@dataclass(slots=True)
class JsonScan:
    """Where a JSON text stands, read character by character (text outside JSON is neutral)."""

    stack: str = ""  # the open brackets
    last: str = ""  # the last structural character outside strings, or "v" after a value
    in_string: bool = False
    escape: bool = False
    number: str = ""  # the number being written

    def feed(self, text: str) -> None:
        for c in text:
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif c == "\\":
                    self.escape = True
                elif c == '"':
                    self.in_string, self.last = False, "v"
                continue
            if self.number and (c.isdigit() or c in ".eE+-"):
                self.number += c
                continue
            if self.number:
                self.number, self.last = "", "v"
            if c == '"':
                self.in_string = True
            elif c in "{[":
                self.stack += c
                self.last = c
            elif c in "}]":
                self.stack = self.stack[:-1]
                self.last = "v"
            elif c in ":,":
                self.last = c
            elif c.isdigit() or c == "-":
                self.number = c
            elif c.isalpha():
                self.last = "v"  # a literal (true, false, null) or text around the JSON

    def copy(self) -> JsonScan:
        return JsonScan(self.stack, self.last, self.in_string, self.escape, self.number)

    def preferred(self) -> tuple[str, ...]:
        """The texts that end what is open soonest, best first."""
        top = self.stack[-1:] or None
        if self.in_string:
            return ('"',)
        if self.number:
            return ("0",) if self.number[-1] in "-+.eE" else (*((_CLOSE[top],) if top else ()), *_SPACE, ",")
        if self.last == "{":
            return ("}", '"')
        if self.last == "[":
            return ("]", *_VALUES)
        if self.last == ":" or (self.last == "," and top == "["):
            return _VALUES
        if self.last == ",":
            return ('"',)
        if self.last == "v" and top:  # whitespace a grammar may want before the bracket (a list of calls)
            return (_CLOSE[top], *_SPACE, ",")
        return ()


@dataclass(slots=True)
class Closing:
    """A constrained sequence's closing state: its JSON scan, and once the budget forces the
    ending, the closing path it follows."""

    scan: JsonScan = field(default_factory=JsonScan)
    path: list[int] | None = None  # set once closing: the tokens still to write

    @property
    def forced(self) -> bool:
        return self.path is not None


class Closer:
    """Closing paths for one tokenizer."""

    def __init__(self, tokenizer, llg_tokenizer: llguidance.LLTokenizer) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = llg_tokenizer.vocab_size
        self.eos = llg_tokenizer.eos_token
        self._single: dict[str, int] = {}
        for text in {*_VALUES, *_CLOSE.values(), *_SPACE, '"', ","}:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == 1:
                self._single[text] = ids[0]
        pieces = tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))  # byte-level: one char a byte
        self._lengths = torch.tensor([len(p) if p else 1_000 for p in pieces], dtype=torch.float32)
        self._texts: dict[int, str] = {}
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, self.vocab_size)

    def text(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.tokenizer.decode([token])
        return text

    def path(self, matcher: llguidance.LLMatcher, scan: JsonScan, limit: int) -> list[int] | None:
        """The closing path from `matcher`'s state (not changed): at most `limit` tokens that leave
        the output complete, or None if there is none that short."""
        m, scan, path = matcher.deep_copy(), scan.copy(), []
        while not (m.is_accepting() or m.is_stopped()):
            if m.is_error():
                return None
            step = m.compute_ff_tokens() or [self._choose(m, scan)]
            if step[0] is None or len(path) + len(step) > limit:
                return None
            for token in step:
                if not m.consume_token(token):
                    return None
                scan.feed(self.text(token))
                path.append(token)
        return path

    def path_after(self, matcher: llguidance.LLMatcher, scan: JsonScan, token: int, limit: int) -> list[int] | None:
        """The closing path after writing `token`, or None if writing it leaves no ending within `limit`."""
        m = matcher.deep_copy()
        if not m.consume_token(token):
            return None
        after = scan.copy()
        after.feed(self.text(token))
        return self.path(m, after, limit)

    def _choose(self, m: llguidance.LLMatcher, scan: JsonScan) -> int | None:
        for text in scan.preferred():
            token = self._single.get(text)
            if token is not None and m.validate_tokens([token]) == 1:
                return token
        llguidance.numpy.fill_next_token_bitmask(m, self._bitmask, 0)
        allowed = unpack_bitmask(torch.from_numpy(self._bitmask), self.vocab_size)[0]
        if not allowed.any():
            return None
        return int(self._lengths.masked_fill(~allowed, float("inf")).argmin())
