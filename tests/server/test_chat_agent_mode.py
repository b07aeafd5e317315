"""The chat app's agent mode in a real browser (Playwright driving Debian's chromium): an agent's
tool call and its result show inline, an approval round trip works, and an answer from a
knowledge-base search lists its sources; screenshot kept in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.server import create_app
from agentforge.tools.servers.calculator import calculate

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


def call(expression: str, id: str) -> dict:
    return {"name": "calculate", "args": {"expression": expression}, "id": id}


@pytest.fixture(scope="module")
def app_url(server_llm, serve_app, tmp_path_factory):
    from agentforge.rag import KnowledgeBase

    notes = tmp_path_factory.mktemp("notes")
    (notes / "offices.md").write_text("# Offices\n\n## Harbour\n\nThe harbour office is in Marrowick.\n")
    kb = KnowledgeBase("notes", path=tmp_path_factory.mktemp("notes-kb"))
    kb.ingest(notes)
    search = {"name": "search_notes", "args": {"query": "harbour office"}, "id": "s1"}
    graphs = {
        "docs": create_react_agent(ScriptedChatModel([{"tool_calls": [search]}, "It is in Marrowick [1]."]),
                                   [kb.as_tool()]),
        "calc": create_react_agent(ScriptedChatModel([{"tool_calls": [call("1234 * 5678", "c1")]},
                                                      "1234 * 5678 is 7006652."]), [calculate]),
        "careful": create_react_agent(ScriptedChatModel([{"tool_calls": [call("2 ** 10", "a"), call("1 / 0", "b")]},
                                                         "Done: 1024, and the other call was rejected."]),
                                      [calculate], approve_tools=True),
    }
    return serve_app(create_app(server_llm, "smollm2-135m", graphs=graphs))


def test_agent_mode_shows_tool_calls_results_and_asks_for_approval(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.wait_for_function("document.querySelectorAll('#mode option').length === 4")
    page.click("#settings summary")
    page.select_option("#mode", "calc")
    page.fill("#input", "What is 1234 * 5678?")
    page.press("#input", "Enter")
    page.locator(".message.tool").wait_for()
    assert "calculate(" in page.locator(".tool-call").first.inner_text()
    assert page.locator(".message.tool").first.inner_text() == "tool result: 7006652"
    page.wait_for_function("[...document.querySelectorAll('.message.assistant')].some("
                           "m => m.innerText.includes('7006652.'))")

    page.click("#new-chat")
    page.select_option("#mode", "careful")
    page.fill("#input", "Compute two things.")
    page.press("#input", "Enter")
    page.locator(".message.approval").nth(1).wait_for()
    approvals = page.locator(".message.approval")
    assert "2 ** 10" in approvals.nth(0).inner_text() and "1 / 0" in approvals.nth(1).inner_text()
    approvals.nth(0).locator("button.approve").click()
    approvals.nth(1).locator("button.reject").click()
    page.wait_for_function("[...document.querySelectorAll('.message.assistant')].some("
                           "m => m.innerText.includes('Done: 1024'))")
    results = page.locator(".message.tool").all_inner_texts()
    assert "tool result: 1024" in results and any("rejected" in r for r in results)
    ARTIFACTS.mkdir(exist_ok=True)
    page.click("#new-chat")
    page.select_option("#mode", "docs")
    page.fill("#input", "Where is the harbour office?")
    page.press("#input", "Enter")
    page.locator(".message.assistant .sources li").wait_for()
    [source] = page.locator(".sources li").all_inner_texts()
    assert source.endswith("/offices.md (Offices > Harbour)")
    assert page.locator(".sources li").first.get_attribute("value") == "1"
    page.screenshot(path=str(ARTIFACTS / "chat_agent_mode.png"), full_page=True)
    assert (ARTIFACTS / "chat_agent_mode.png").stat().st_size > 1000
