"""The chat app in a real browser (Playwright driving Debian's chromium): a message goes out, the
answer streams in, a screenshot is kept in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agentforge.server import create_app

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="module")
def app_url(server_llm, serve_app):
    return serve_app(create_app(server_llm, "smollm2-135m"))


def test_page_widget_and_assets_are_served_without_a_cdn(app_url):
    page = httpx.get(app_url).text
    assert "<title>AgentForge chat</title>" in page and "http" not in page.replace("http-equiv", "")
    for asset in ("/static/app.js", "/static/markdown.js", "/static/style.css", "/widget.js"):
        response = httpx.get(app_url + asset)
        assert response.status_code == 200 and "//cdn" not in response.text, asset


def test_chat_page_streams_an_answer(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.click("#settings summary")
    page.fill("#max-tokens", "48")
    page.fill("#input", "Tell me a short story about a robot.")
    page.press("#input", "Enter")
    page.wait_for_selector(".message.user")
    answer = page.locator(".message.assistant").last
    lengths = []
    for _ in range(200):  # watch the answer grow while it streams
        lengths.append(len(answer.inner_text()))
        if not page.locator(".message.assistant.streaming").count():
            break
        page.wait_for_timeout(50)
    final = answer.inner_text()
    assert final.strip(), "no answer appeared"
    assert len({n for n in lengths if 0 < n < len(final)}) >= 1, f"the answer did not stream: {lengths}"
    assert page.locator("#conversations li").count() == 1
    assert "Tell me a short story" in page.locator("#conversations li").first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert (ARTIFACTS / "chat.png").stat().st_size > 1000


def test_widget_opens_the_chat_in_a_panel(app_url, tmp_path, browser):
    site = tmp_path / "site.html"
    site.write_text(f'<html><body><h1>Some site</h1><script src="{app_url}/widget.js"></script></body></html>')
    page = browser.new_page()
    page.goto(site.as_uri())
    page.click("button[aria-label='Open chat']")
    frame = page.frame_locator("iframe[title='Chat']")
    frame.locator("#input").wait_for()
    assert page.locator("iframe[title='Chat']").is_visible()
