"""Tool-use tasks over facts a model cannot know: lookups in made-up records, arithmetic, and
two-step chains. Shared by `bench/agent_tasks.py` and the real-model agent test.

A task succeeds when the agent's final answer holds every expected value (digits compared without
thousands separators).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import jsonschema

from agentforge.tools import tool
from agentforge.tools.servers.calculator import calculate

POPULATION = {"zorbatown": 1234567, "quexville": 482910, "lumara": 75003}
PRICES = {"ZNTH": 187.42, "QBIT": 23.05}
STAFF = {"mira okafor": {"office": "B-214", "phone": "555-0142", "team": "Payments"},
         "tomas lindqvist": {"office": "C-009", "phone": "555-0199", "team": "Search"}}
ORDERS = {"A-1001": "shipped on 2026-11-28", "A-1002": "processing"}


@tool
def get_population(city: str) -> int:
    """Get the number of inhabitants of a city."""
    return POPULATION[city.strip().lower()]


@tool
def get_stock_price(ticker: str) -> float:
    """Get the current price of one share, in dollars, by ticker symbol."""
    return PRICES[ticker.strip().upper()]


@tool
def lookup_employee(name: str) -> dict:
    """Look up a colleague in the company directory: office, phone and team."""
    return STAFF[name.strip().lower()]


@tool
def get_order_status(order_id: str) -> str:
    """Get the shipping status of an order by its id, e.g. "A-1001"."""
    return ORDERS[order_id.strip().upper()]


TOOLS = [get_population, get_stock_price, lookup_employee, get_order_status, calculate]


@dataclass(frozen=True)
class Task:
    kind: str  # "lookup", "arithmetic" or "chain"
    question: str
    expected: tuple[str, ...]


TASKS = [
    Task("lookup", "What is the population of Zorbatown?", ("1234567",)),
    Task("lookup", "How many people live in Quexville?", ("482910",)),
    Task("lookup", "Get the population of Lumara.", ("75003",)),
    Task("lookup", "What is the stock price of ZNTH?", ("187.42",)),
    Task("lookup", "Get the current share price of QBIT.", ("23.05",)),
    Task("lookup", "Which office is Mira Okafor in?", ("B-214",)),
    Task("lookup", "What is Tomas Lindqvist's phone number?", ("555-0199",)),
    Task("lookup", "What is the status of order A-1001?", ("2026-11-28",)),
    Task("arithmetic", "Compute 1234 * 5678 with the calculator.", ("7006652",)),
    Task("arithmetic", "What is 98765 - 43210?", ("55555",)),
    Task("arithmetic", "Calculate 2 ** 20.", ("1048576",)),
    Task("arithmetic", "What is the square root of 7921?", ("89",)),
    Task("arithmetic", "Use the calculator to multiply 3.5 by 4.25.", ("14.875",)),
    Task("arithmetic", "What is 17% of 2350?", ("399.5",)),
    Task("chain", "What is the combined population of Zorbatown and Quexville?", ("1717477",)),
    Task("chain", "How much do 100 shares of ZNTH cost?", ("18742",)),
    Task("chain", "How much more does one ZNTH share cost than one QBIT share?", ("164.37",)),
    Task("chain", "What is twice the population of Lumara?", ("150006",)),
    Task("chain", "How much do 3 shares of QBIT cost?", ("69.15",)),
    Task("chain", "Which team is Mira Okafor on, and what is the status of order A-1002?", ("Payments", "processing")),
]

_SCHEMAS = {t.name: t.parameters for t in TOOLS}


def succeeded(task: Task, answer: str) -> bool:
    """Whether the final answer holds every expected value."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", answer or "")
    return all(e.lower() in text.lower() for e in task.expected)


def call_validity(calls: list[tuple[str, str]]) -> tuple[int, int]:
    """(valid, total) of (tool name, JSON arguments) calls: a known tool and arguments its schema accepts."""
    valid = 0
    for name, arguments in calls:
        try:
            jsonschema.validate(json.loads(arguments), _SCHEMAS[name])
            valid += 1
        except (KeyError, ValueError, jsonschema.ValidationError):
            pass
    return valid, len(calls)
