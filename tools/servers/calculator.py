"""Calculator MCP server: arithmetic and math functions through a safe evaluator (an AST walk over
an allow-list; no `eval`), with limits on size and on numbers that would take forever to compute.

    python -m agentforge.tools.servers.calculator [--http --port 8765 --token T]
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Annotated

from pydantic import Field

from agentforge.tools.mcp_server import MCPToolServer
from agentforge.tools.servers._cli import serve_main
from agentforge.tools.tool import tool

MAX_EXPRESSION = 1000
MAX_INT_BITS = 4096
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {name: getattr(math, name) for name in (
    "sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "exp", "log", "log2",
    "log10", "floor", "ceil", "factorial", "gcd", "hypot", "degrees", "radians")} | {
    "abs": abs, "round": round, "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculatorError(ValueError):
    pass


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; CalculatorError says what is not allowed. A float result
    is rounded to 12 significant digits, so binary noise never reaches a model (`0.1 + 0.2` is 0.3)."""
    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(f"expression too long ({len(expression)} characters; the limit is {MAX_EXPRESSION})")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from exc
    value = _eval(tree.body)
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and right * max(abs(left), 2).bit_length() > MAX_INT_BITS:
                raise CalculatorError("result too large")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise CalculatorError("division by zero") from exc
        except OverflowError as exc:
            raise CalculatorError("result too large") from exc
        return _checked(result)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and args and isinstance(args[0], int) and args[0] > 1000:
            raise CalculatorError("factorial argument too large (the limit is 1000)")
        try:
            return _checked(_FUNCTIONS[node.func.id](*args))
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from exc
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise CalculatorError(
        f"{ast.unparse(node)!r} is not allowed: use numbers, + - * / // % ** (or ^), parentheses, pi, e, tau "
        f"and the functions {allowed}"
    )


def _checked(value):
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if isinstance(value, complex):
        raise CalculatorError("complex results are not supported")
    return value


# What an expression may contain: the schema tells a model (and a grammar-constrained decoder) so,
# which keeps a small model from writing "2 * 3 = 6" into the argument.
EXPRESSION = r"^[0-9a-z(-][0-9a-z_ .,+*/%^()-]*$"


@tool
def calculate(expression: Annotated[str, Field(pattern=EXPRESSION, max_length=MAX_EXPRESSION)]) -> int | float:
    """Evaluate an arithmetic expression, e.g. "2 * (3 + 4) ** 2" or "sqrt(2) * pi".

    Args:
        expression: Numbers, + - * / // % ** (or ^), parentheses, pi, e, tau and math functions
            such as sqrt, sin, cos, log, exp, floor, ceil, round, min, max, abs.
    """
    return evaluate(expression)


def build() -> MCPToolServer:
    return MCPToolServer("calculator", [calculate], instructions="Exact arithmetic: call calculate(expression).")


if __name__ == "__main__":
    serve_main(lambda args: build(), __doc__)
