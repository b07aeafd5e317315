"""Tool specs: OpenAI function specs from dicts, pydantic models and typed Python functions.

The engine's shared surface for tools (with `protocol` and `errors`): `agentforge.tools` builds its
`Tool` schemas with these helpers. Pure Python and pydantic: no torch, no grammar library.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from .errors import InvalidRequestError

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


def tool_spec(tool: dict | type[BaseModel] | Callable) -> dict:
    """An OpenAI function spec from an OpenAI tool dict, a bare `{name, parameters}` dict, a pydantic
    model class (its name, docstring and schema) or a typed function (its name, docstring and hints)."""
    if isinstance(tool, dict):
        function = tool.get("function", tool) if tool.get("type", "function") == "function" else None
        if not isinstance(function, dict):
            raise InvalidRequestError(f"unsupported tool type {tool.get('type')!r}; only 'function' tools exist")
        name, description = function.get("name"), function.get("description") or ""
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        parameters = json_schema_of(parameters)
    elif isinstance(tool, type) and issubclass(tool, BaseModel):
        name, description, parameters = tool.__name__, own_doc(tool), tool.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
    elif callable(tool):
        name, description, parameters = function_schema(tool)
    else:
        raise InvalidRequestError(f"a tool must be a dict, a pydantic model class or a function, got {type(tool).__name__}")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidRequestError(f"invalid tool name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(description, str):
        raise InvalidRequestError(f"tool {name!r}: description must be a string")
    if parameters.get("type", "object") != "object":
        raise InvalidRequestError(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def own_doc(cls: type | None) -> str:
    """A class's own docstring (not one inherited from BaseModel), cleaned; "" without one."""
    return inspect.cleandoc(cls.__doc__) if cls is not None and cls.__doc__ else ""


def tool_specs(tools: list) -> list[dict]:
    """`tool_spec` of each tool; names must be unique."""
    if not isinstance(tools, list) or not tools:
        raise InvalidRequestError("tools must be a non-empty list")
    specs = [tool_spec(t) for t in tools]
    names = [s["function"]["name"] for s in specs]
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"tool names must be unique, got {names}")
    return specs


def function_schema(fn: Callable) -> tuple[str, str, dict]:
    """Name, description and parameters schema of a typed Python function (see `function_model`)."""
    name, description, model = function_model(fn)
    return name, description, model_parameters(model)


def function_model(fn: Callable, skip: tuple[str, ...] = ()) -> tuple[str, str, type[BaseModel]]:
    """Name, description and a pydantic model of the parameters of a typed Python function.

    The description is the docstring's text up to a Google-style `Args:` section, whose entries
    become the parameters' descriptions. `self`/`cls`, `*args`, `**kwargs` and the names in `skip`
    are not parameters.
    """
    doc = inspect.getdoc(fn) or ""
    description, arg_docs = _split_docstring(doc)
    fields: dict[str, Any] = {}
    hints = _type_hints(fn)
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("self", "cls", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, _field(default, arg_docs.get(p.name)))
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        model = create_model(f"{name}_args", **fields)
        model.model_json_schema()
    except Exception as exc:  # a hint pydantic cannot describe
        raise InvalidRequestError(f"tool {name!r}: cannot derive a JSON schema: {exc}") from exc
    return name, description, model


def model_parameters(model: type[BaseModel]) -> dict:
    """A pydantic model's JSON schema as tool parameters: without pydantic's generated titles, and
    without the model's docstring, which is the tool's description (OpenAI and LangChain keep it
    on the function, not in its parameters)."""
    parameters = model.model_json_schema()
    parameters.pop("title", None)
    parameters.pop("description", None)
    for prop in parameters.get("properties", {}).values():
        prop.pop("title", None)
    return parameters


def _type_hints(fn: Callable) -> dict:
    try:
        return typing.get_type_hints(fn, include_extras=True)  # keeps Annotated constraints (Field(pattern=...))
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return getattr(fn, "__annotations__", {})


def _field(default, description: str | None) -> FieldInfo:
    """A pydantic field for a parameter; a `Field(...)` default keeps its constraints."""
    if isinstance(default, FieldInfo):
        field_info = copy.copy(default)
        field_info.description = field_info.description or description
        return field_info
    return Field(default, description=description)


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    match = re.search(r"^(Args|Arguments|Parameters):\s*$", doc, re.M)
    if not match:
        return doc.strip(), {}
    description, section = doc[: match.start()].strip(), doc[match.end() :]
    args: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        if line and not line[0].isspace():  # the next section ("Returns:") ends this one
            break
        entry = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            args[current] = entry.group(2).strip()
        elif current and line.strip():
            args[current] += " " + line.strip()
    return description, args


def json_schema_of(spec: dict | str | type[BaseModel]) -> dict:
    """A JSON schema as a dict, from a dict, JSON text or a pydantic model class."""
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_json_schema()
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"JSON schema is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise InvalidRequestError(f"JSON schema must be an object, got {type(spec).__name__}")
    return spec
