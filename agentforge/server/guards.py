"""Production guards for the API: API keys, per-key rate limits, and guardrails on input and output.

All are off unless configured (`ServerConfig`), as OpenAI-compatible servers usually are.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

# Output PII patterns: e-mail addresses, phone numbers, payment card numbers (13-19 digits).
PII_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "card": re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),
    "phone": re.compile(r"(?<![\w(])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\w)"),
}
REDACTION_HOLDBACK = 40  # streamed text kept back until a PII match cannot still be growing


def check_api_key(header: str | None, keys: list[str]) -> str | None:
    """The key a request authenticated with (None when keys are not required); raises PermissionError."""
    if not keys:
        return None
    given = (header or "").removeprefix("Bearer ").strip()
    for key in keys:
        if hmac.compare_digest(given.encode(), key.encode()):
            return key
    raise PermissionError("Incorrect API key provided" if given else "Missing API key: send 'Authorization: Bearer KEY'")


@dataclass
class RateLimiter:
    """Sliding one-minute windows per key: at most `requests_per_minute` requests and
    `tokens_per_minute` tokens (prompt + completion, counted when a request finishes)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    _requests: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    _tokens: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, key: str) -> float | None:
        """Record a request; None if it may go ahead, else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            requests, tokens = self._requests[key], self._tokens[key]
            for window in (requests, tokens):
                while window and window[0][0] <= now - 60:
                    window.popleft()
            if self.requests_per_minute is not None and len(requests) >= self.requests_per_minute:
                return math.ceil(requests[0][0] + 60 - now)
            if self.tokens_per_minute is not None and sum(n for _, n in tokens) >= self.tokens_per_minute:
                return math.ceil(tokens[0][0] + 60 - now)
            requests.append((now, 1))
            return None

    def spend(self, key: str, tokens: int) -> None:
        with self._lock:
            self._tokens[key].append((time.monotonic(), tokens))


@dataclass
class Guardrails:
    """Checks on what comes in and goes out: `deny` patterns refuse a request (or stop an answer)
    that matches; `redact_pii` masks e-mail addresses, phone and card numbers in answers;
    `max_output_chars` cuts answers; `require_json` (per request, with a JSON response_format)
    refuses answers that do not parse."""

    deny: list[str] = field(default_factory=list)
    redact_pii: bool = False
    max_output_chars: int | None = None

    def __post_init__(self) -> None:
        try:
            self._deny = [re.compile(p, re.IGNORECASE) for p in self.deny]
        except re.error as exc:
            raise ValueError(f"invalid guardrail deny pattern: {exc}") from exc

    @property
    def active(self) -> bool:
        return bool(self._deny or self.redact_pii or self.max_output_chars)

    def check_input(self, text: str) -> str | None:
        """Why the input is refused, or None."""
        for pattern in self._deny:
            if pattern.search(text):
                return f"the request was refused by a content policy (matched {pattern.pattern!r})"
        return None

    def check_output(self, text: str) -> str | None:
        for pattern in self._deny:
            if pattern.search(text):
                return "[the answer was withheld by a content policy]"
        return None

    def redact(self, text: str) -> str:
        if not self.redact_pii:
            return text
        for kind, pattern in PII_PATTERNS.items():
            text = pattern.sub(f"[{kind} redacted]", text)
        return text

    def limit(self, text: str) -> str:
        return text if self.max_output_chars is None else text[: self.max_output_chars]


class OutputFilter:
    """Applies guardrails to one streamed answer: deltas in, safe deltas out. Redaction works on
    the whole text so far and keeps the last few characters back while a match could still grow."""

    def __init__(self, rails: Guardrails) -> None:
        self.rails, self.raw, self.sent, self.blocked = rails, "", "", False

    def feed(self, delta: str, final: bool = False) -> str:
        if self.blocked:
            return ""
        self.raw += delta
        refusal = self.rails.check_output(self.raw)
        if refusal is not None:
            self.blocked = True
            return refusal if not self.sent else "\n" + refusal
        safe = self.rails.limit(self.rails.redact(self.raw))
        ready = safe if final or not self.rails.redact_pii else safe[: max(len(self.sent), len(safe) - REDACTION_HOLDBACK)]
        if not ready.startswith(self.sent):  # a redaction reached into text already sent: send only what follows
            ready = self.sent + ready[len(self.sent):]
        out, self.sent = ready[len(self.sent):], ready
        return out


class StreamGuard:
    """Output guardrails for every choice of one streamed answer (an `OutputFilter` per choice)."""

    def __init__(self, rails: Guardrails) -> None:
        self.rails, self.filters = rails, {}

    def apply(self, index: int, delta: str, finish_reason: str | None, final: bool) -> tuple[str, str | None]:
        """The delta to send and the finish reason ("content_filter" once the answer was withheld)."""
        if not self.rails.active:
            return delta, finish_reason
        f = self.filters.setdefault(index, OutputFilter(self.rails))
        text = f.feed(delta, final=final)
        return text, "content_filter" if f.blocked and finish_reason else finish_reason
