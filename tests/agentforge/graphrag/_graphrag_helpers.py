"""A scripted model that answers every GraphRAG prompt by its kind, deterministically: extraction
from the capitalized names of the chunk, reports naming their first entities, map points,
primers and cited answers. It keeps every prompt, so tests can count and inspect calls."""

from __future__ import annotations

import json
import re

from agentforge.agents import ScriptedChatModel


def respond(messages) -> str:
    prompt = messages[-1].content
    if prompt.startswith("Text:"):
        text = prompt.split("\n", 1)[1].split("\n\nList the important entities")[0]
        names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b", text)))[:6]
        entities = [{"name": n, "type": "organization" if n.endswith(("Labs", "Bank", "Shipping")) else "person",
                     "description": f"{n} appears in the text."} for n in names]
        relationships = [{"source": a, "target": b, "description": f"{a} is linked to {b}.", "strength": 5}
                         for a, b in zip(names, names[1:])]
        return json.dumps({"entities": entities, "relationships": relationships})
    if prompt.startswith("Some entities"):
        return json.dumps({"entities": [], "relationships": []})
    if prompt.startswith("Are there still"):
        return json.dumps({"more": False})
    if prompt.startswith("You write a report"):
        first = re.search(r"^1\. (.+?) \(", prompt, re.M).group(1)
        return json.dumps({"title": f"Community around {first}", "summary": f"{first} and its relations.",
                           "rating": 6.5, "rating_explanation": "central", "findings": [
                               {"summary": f"{first} matters", "explanation": "it links others", "references": [1, 99]}]})
    if prompt.startswith("Reports:") and "List up to 3 points" in prompt:
        return json.dumps({"points": [{"description": "the first report answers it", "score": 80, "report": 1},
                                      {"description": "no help", "score": 0, "report": 1}]})
    if prompt.startswith("Reports:"):
        return json.dumps({"answer": "A first answer.", "follow_ups": ["Who founded Zentrix Labs?"]})
    return "The answer is in the first source [1] and not in [42]."


def graphrag_model(calls: int = 2000) -> ScriptedChatModel:
    return ScriptedChatModel([respond] * calls)


def kinds(model: ScriptedChatModel) -> list[str]:
    """What each call was: extract, glean, loop, report, map, primer or answer."""
    out = []
    for call in model.calls:
        prompt = call["messages"][-1].content
        out.append("extract" if prompt.startswith("Text:") else "glean" if prompt.startswith("Some entities")
                   else "loop" if prompt.startswith("Are there") else "report" if prompt.startswith("You write")
                   else "map" if "List up to 3 points" in prompt else "primer" if prompt.startswith("Reports:")
                   else "answer")
    return out
