"""State schemas: which keys a graph has, how each key folds its writes, and how nodes see the state.

A schema is a TypedDict, a dataclass or a pydantic model. A key annotated `Annotated[T, reducer]`
folds every write with `reducer(current, write)`; any other key takes one value per step.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .types import Command, InvalidUpdateError, Overwrite

MISSING: Any = object()


@dataclass(slots=True)
class Channel:
    """One state key: its reducer (None: last value wins, one write per step) and its value before
    any write (`T()` for a reducer key whose type can be built empty, else MISSING)."""

    name: str
    reducer: Callable[[Any, Any], Any] | None = None
    initial: Any = MISSING
    managed: bool = False  # computed by the run (`RemainingSteps`), never written or stored


class _RemainingStepsValue:
    """Marks a key the run fills with the supersteps left before the recursion limit."""


RemainingSteps = Annotated[int, _RemainingStepsValue]


def channels_of(schema: type) -> dict[str, Channel]:
    """The channels of a TypedDict, dataclass or pydantic model class."""
    if not is_state_schema(schema):
        raise TypeError(f"a state schema must be a TypedDict, a dataclass or a pydantic model, got {schema!r}")
    if issubclass(schema, BaseModel):
        hints = {name: _with_metadata(f.annotation, f.metadata) for name, f in schema.model_fields.items()}
    else:
        hints = typing.get_type_hints(schema, include_extras=True)
    return {name: _channel(name, hint) for name, hint in hints.items()}


def is_state_schema(schema) -> bool:
    """Whether `schema` is a class a state can be: a TypedDict, a dataclass or a pydantic model."""
    return isinstance(schema, type) and (
        issubclass(schema, BaseModel) or dataclasses.is_dataclass(schema)
        or (issubclass(schema, dict) and hasattr(schema, "__annotations__")))


def _with_metadata(annotation, metadata: list):
    reducers = [m for m in metadata if callable(m)]
    return Annotated[annotation, *reducers] if reducers else annotation


def _channel(name: str, hint) -> Channel:
    if get_origin(hint) is not Annotated:
        return Channel(name)
    base, *meta = get_args(hint)
    if _RemainingStepsValue in meta:
        return Channel(name, managed=True)
    reducers = [m for m in meta if callable(m) and not isinstance(m, type)]
    if not reducers:
        return Channel(name)
    reducer = reducers[-1]
    try:
        params = list(inspect.signature(reducer).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        params = None
    if params is not None:
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
            raise ValueError(f"Invalid reducer for key {name!r}: it must take two positional arguments")
    origin = get_origin(base) or base
    initial = MISSING
    if isinstance(origin, type):
        try:
            initial = origin()
        except Exception:
            pass
    return Channel(name, reducer, initial)


def apply_writes(channels: dict[str, Channel], values: dict[str, Any], writes: Iterable[tuple[str, Any]]) -> set[str]:
    """Fold one step's writes (in order) into `values`; returns the keys that changed.

    A key without a reducer takes at most one write per step; an `Overwrite` replaces a reducer
    key's value (later writes to it in the same step are dropped, a second Overwrite is an error).
    """
    grouped: dict[str, list] = defaultdict(list)
    for key, value in writes:
        if key in channels and not channels[key].managed:
            grouped[key].append(value)
    for key, writes_ in grouped.items():
        channel = channels[key]
        if channel.reducer is None:
            if len(writes_) > 1:
                raise InvalidUpdateError(
                    f"At key '{key}': Can receive only one value per step. Use an Annotated key to handle multiple values."
                )
            values[key] = _overwrite_value(writes_[0])[1]
            continue
        value = values.get(key, channel.initial)
        seen_overwrite = False
        for write in writes_:
            is_overwrite, write = _overwrite_value(write)
            if is_overwrite:
                if seen_overwrite:
                    raise InvalidUpdateError(f"At key '{key}': Can receive only one Overwrite value per super-step.")
                value, seen_overwrite = write, True
            elif not seen_overwrite:
                value = write if value is MISSING else channel.reducer(value, write)
        values[key] = value
    return set(grouped)


def _overwrite_value(write) -> tuple[bool, Any]:
    if isinstance(write, Overwrite):
        return True, write.value
    if isinstance(write, dict) and len(write) == 1 and "__overwrite__" in write:
        return True, write["__overwrite__"]
    return False, write


def update_writes(update: Any, keys: Iterable[str] | None = None) -> list[tuple[str, Any]]:
    """A node's return value (dict, pydantic model, dataclass, list of (key, value), or None) as writes."""
    if update is None:
        return []
    if isinstance(update, dict):
        return list(update.items())
    if isinstance(update, BaseModel):
        return [(k, getattr(update, k)) for k in update.model_fields_set]
    if dataclasses.is_dataclass(update) and not isinstance(update, type):
        return [(f.name, getattr(update, f.name)) for f in dataclasses.fields(update)
                if f.default is dataclasses.MISSING or getattr(update, f.name) != f.default]
    if isinstance(update, (list, tuple)) and all(isinstance(w, tuple) and len(w) == 2 for w in update):
        return list(update)
    raise InvalidUpdateError(f"Expected dict, got {update!r}")


def split_return(value: Any) -> tuple[list[tuple[str, Any]], list[Command]]:
    """A node's return value as (state writes, commands): dicts, Commands, a list mixing both, or None."""
    if isinstance(value, Command):
        return update_writes(value.update), [value]
    if isinstance(value, list) and any(isinstance(v, Command) for v in value):
        writes, commands = [], []
        for item in value:
            w, c = split_return(item)
            writes += w
            commands += c
        return writes, commands
    return update_writes(value), []


def as_input(schema: type, values: dict[str, Any]):
    """What a node receives: a dict for a TypedDict, else an instance of the schema."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(values)
    if dataclasses.is_dataclass(schema):
        return schema(**values)
    return dict(values)


def validate_state(schema: type, values: dict[str, Any], node: str) -> None:
    """Check a pydantic state after every update (not only on input); name the node that broke it."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            schema.model_validate(values)
        except ValidationError as exc:
            raise InvalidUpdateError(f"state is invalid after {node!r} ran: {exc}") from exc
