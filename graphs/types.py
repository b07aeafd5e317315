"""The graph runtime's vocabulary: START/END, Send, Command, interrupts, policies and errors."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

START = "__start__"
END = "__end__"

N = TypeVar("N")


@dataclass(slots=True)
class Send:
    """Run `node` once in the next step with `arg` as its input (instead of the graph state).

    Return a list of Sends from a conditional edge (map-reduce) or put them in `Command.goto`.
    """

    node: str
    arg: Any

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))


@dataclass(slots=True, frozen=True)
class Command(Generic[N]):
    """Returned by a node: apply `update` and go to `goto` (as well as the node's static edges).
    Passed as graph input: `resume` answers pending `interrupt()`s; `update` edits the state first.
    `graph=Command.PARENT` sends the command to the graph that contains this subgraph."""

    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: str | Send | Sequence[str | Send] = ()

    PARENT: ClassVar[str] = "__parent__"


@dataclass(slots=True, frozen=True)
class Interrupt:
    """A pause requested by `interrupt(value)`; resume it with `Command(resume=...)` (by `id` when
    several are pending)."""

    value: Any
    id: str


@dataclass(slots=True)
class Overwrite:
    """Write `value` to a key with a reducer, bypassing the reducer (at most one per key per step)."""

    value: Any


@dataclass(slots=True)
class RetryPolicy:
    """Retry a failing node: `max_attempts` counts the first run; waits grow by `backoff_factor`.

    `retry_on` is an exception class, a tuple of them, or a predicate; the default retries
    connection errors and 5xx HTTP errors but not programming errors (ValueError, TypeError, ...).
    """

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: type[Exception] | Sequence[type[Exception]] | Callable[[Exception], bool] = field(
        default_factory=lambda: default_retry_on
    )

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.initial_interval < 0 or self.backoff_factor < 1 or self.max_interval < 0:
            raise ValueError("intervals must be >= 0 and backoff_factor >= 1")

    def should_retry(self, exc: Exception) -> bool:
        if isinstance(self.retry_on, type):
            return isinstance(exc, self.retry_on)
        if isinstance(self.retry_on, Sequence):
            return isinstance(exc, tuple(self.retry_on))
        return bool(self.retry_on(exc))

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        interval = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 1))
        return interval + (random.uniform(0, 1) if self.jitter else 0)


def default_retry_on(exc: Exception) -> bool:
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500
    return not isinstance(
        exc, (ValueError, TypeError, ArithmeticError, ImportError, LookupError, NameError, SyntaxError,
              RuntimeError, ReferenceError, StopIteration, StopAsyncIteration, OSError)
    )


@dataclass(slots=True)
class CachePolicy:
    """Reuse a node's result for the same input: `key_func(input)` (default: its pickle) names the
    entry, kept `ttl` seconds (None: forever) in the cache passed to `compile(cache=...)`."""

    key_func: Callable[[Any], Hashable] | None = None
    ttl: float | None = None


@dataclass(slots=True)
class StateSnapshot:
    """A thread's state at one checkpoint: its values, the nodes that run next, and where it is."""

    values: dict[str, Any]
    next: tuple[str, ...]
    config: dict
    metadata: dict
    created_at: str
    parent_config: dict | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...] = ()


@dataclass(slots=True, frozen=True)
class PregelTask:
    """A task pending at a checkpoint, with its error or interrupts if it already ran. A subgraph
    node's `state` is its own snapshot with `get_state(subgraphs=True)`, else the config that
    reads it."""

    id: str
    name: str
    path: tuple
    error: Exception | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


Durability = Literal["sync", "async", "exit"]
StreamMode = Literal["values", "updates", "custom", "messages", "debug", "checkpoints", "tasks"]


class GraphError(Exception):
    """Base class of the runtime's errors."""


class InvalidUpdateError(GraphError, ValueError):
    """A node's update cannot be applied (two values for a key without a reducer, a bad return type...)."""


class GraphRecursionError(GraphError, RecursionError):
    """The graph ran `recursion_limit` supersteps without reaching END."""


class EmptyInputError(GraphError, ValueError):
    """The graph was invoked with no input and has nothing to resume."""


class GraphValidationError(GraphError, ValueError):
    """The graph's structure is invalid (unknown node in an edge, no entry point, ...)."""


class GraphInterrupt(GraphError):
    """Raised inside a node by `interrupt()`; the runtime catches it and pauses the thread."""

    def __init__(self, interrupts: Sequence[Interrupt] = ()) -> None:
        super().__init__(tuple(interrupts))
        self.interrupts = tuple(interrupts)


class ParentCommand(GraphError):
    """Raised to hand a `Command(graph=Command.PARENT)` from a subgraph to its parent."""

    def __init__(self, command: Command) -> None:
        super().__init__(command)
        self.command = command
