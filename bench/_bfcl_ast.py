"""BFCL's AST check of decoded calls against its possible answers (Python questions), written from
the rules of `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (bfcl-eval 2026.3.23).

A decoded output is a list of `{function_name: {param: value}}`. Categories: simple (exactly one
call), multiple (one call, to the expected function), parallel / parallel_multiple (as many calls
as expected, matched in any order), irrelevance (no call).
"""

from __future__ import annotations

import re

_PYTHON_TYPES = {"string": str, "integer": int, "float": float, "number": float, "boolean": bool, "array": list,
                 "tuple": list, "dict": dict, "object": dict, "any": str}


def check(category: str, functions: list[dict], calls: list[dict], answers: list[dict]) -> tuple[bool, str]:
    """Whether `calls` is a right answer, and why not."""
    if category == "irrelevance":
        return (not calls, "" if not calls else "called a function")
    if "parallel" in category:
        return _parallel(functions, calls, answers)
    if len(calls) != len(answers):
        return False, f"wrong number of calls: {len(calls)}, expected {len(answers)}"
    expected = next(iter(answers[0]))
    return _simple(_describe(functions, expected), calls[0], answers[0])


def _describe(functions: list[dict], name: str) -> dict:
    return next(f for f in functions if f["name"] == name)


def _parallel(functions: list[dict], calls: list[dict], answers: list[dict]) -> tuple[bool, str]:
    if len(calls) != len(answers):
        return False, f"wrong number of calls: {len(calls)}, expected {len(answers)}"
    matched: set[int] = set()
    for answer in answers:
        description = _describe(functions, next(iter(answer)))
        for index, call in enumerate(calls):
            if index not in matched and _simple(description, call, answer)[0]:
                matched.add(index)
                break
        else:
            return False, f"no call matches {answer}"
    return True, ""


def _simple(description: dict, call: dict, answer: dict) -> tuple[bool, str]:
    possible = next(iter(answer.values()))
    name = description["name"]
    if name not in call:
        return False, f"expected a call to {name}, got {list(call)}"
    arguments = call[name]
    properties = description["parameters"]["properties"]
    for param in description["parameters"].get("required", []):
        if param not in arguments:
            return False, f"missing required parameter {param!r}"
    for param, value in arguments.items():
        if param not in properties or param not in possible:
            return False, f"unexpected parameter {param!r}"
        ok, why = _value_ok(param, value, properties[param], possible[param])
        if not ok:
            return False, why
    for param, options in possible.items():
        if param not in arguments and "" not in options:
            return False, f"optional parameter {param!r} left out but expected"
    return True, ""


def _value_ok(param: str, value, schema: dict, options: list) -> tuple[bool, str]:
    kind = schema.get("type", "string")
    expected = _PYTHON_TYPES.get(kind, str)
    if expected is float and type(value) is int:
        value = float(value)
    answer_type = next((type(o) for o in options if o != ""), None)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is not expected:
        if answer_type is not None and type(value) is answer_type:
            is_variable = True
        else:
            return False, f"{param!r}: expected {kind}, got {type(value).__name__} {value!r}"
    elif kind in ("array", "tuple") and not _items_typed(value, schema, options):
        return False, f"{param!r}: items of the wrong type in {value!r}"
    if not is_variable:
        if expected is dict:
            return _dict_ok(param, value, options)
        if expected is list and _PYTHON_TYPES.get(schema.get("items", {}).get("type")) is dict:
            return _list_of_dicts_ok(param, value, options)
        if expected is str:
            ok = _norm(value) in [_norm(o) for o in options if isinstance(o, str)]
            return ok, "" if ok else f"{param!r}: {value!r} is not one of {options}"
        if expected is list:
            candidates = [[_norm(x) if isinstance(x, str) else x for x in o] for o in options if isinstance(o, list)]
            ok = [_norm(x) if isinstance(x, str) else x for x in value] in candidates
            return ok, "" if ok else f"{param!r}: {value!r} is not one of {options}"
    ok = value in options
    return ok, "" if ok else f"{param!r}: {value!r} is not one of {options}"


def _items_typed(value: list, schema: dict, options: list) -> bool:
    item_type = _PYTHON_TYPES.get(schema.get("items", {}).get("type"))
    if item_type is None:
        return True
    for option in options:
        if not isinstance(option, list):
            continue
        answer_type = next((type(o) for o in option if o != ""), None)
        if all(type(v) is item_type or (item_type is float and type(v) is int) or type(v) is answer_type
               for v in value):
            return True
    return False


def _dict_ok(param: str, value: dict, options: list) -> tuple[bool, str]:
    for option in options:
        if option == "":
            continue
        if all(k in option and (_norm(v) if isinstance(v, str) else v)
               in [_norm(o) if isinstance(o, str) else o for o in option[k]] for k, v in value.items()) and all(
                k in value or "" in v for k, v in option.items()):
            return True, ""
    return False, f"{param!r}: {value!r} matches none of {options}"


def _list_of_dicts_ok(param: str, value: list, options: list) -> tuple[bool, str]:
    for option in options:
        if len(option) == len(value) and all(_dict_ok(param, v, [o])[0] for v, o in zip(value, option)):
            return True, ""
    return False, f"{param!r}: {value!r} matches none of {options}"


def _norm(text: str) -> str:
    """BFCL's string standardisation: no spaces or ,./-_*^, lower case, double quotes."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')
