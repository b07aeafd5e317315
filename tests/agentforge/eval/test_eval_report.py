"""The HTML report in a real browser (Playwright driving Debian's chromium): summary with bars and
intervals, the comparison, every row; self-contained (no request leaves the page). Screenshot kept
in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

from agentforge.eval import Example, evaluate

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
DATA = [Example("capital of France?", "Paris"), Example("capital of Japan?", "Tokyo"), Example("2 + 2?", "4"),
        Example("boom", "x")]


def first(question):
    if question == "boom":
        raise RuntimeError("the target failed")
    return {"capital of France?": "Paris", "capital of Japan?": "Kyoto", "2 + 2?": "4 <b>bold</b>"}[question]


def test_html_report_in_chromium(tmp_path, browser):
    old = evaluate(first, DATA, ["normalized_exact_match", "token_f1"], progress=False, name="v1")
    new = evaluate(lambda q: {"capital of Japan?": "Tokyo"}.get(q, first(q)), DATA, ["normalized_exact_match",
                   "token_f1"], progress=False, name="v2")
    page_file = tmp_path / "report.html"
    new.to_html(page_file, compared=old)
    page = browser.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri())
    assert page.title() == "Eval: v2"
    summary = page.locator("table.summary tr").all_inner_texts()
    assert any(line.startswith("normalized_exact_match\t0.667") for line in summary), summary
    assert page.locator("svg.bar").count() == 2
    assert float(page.locator("svg.bar rect.mean").first.get_attribute("width")) == round(2 / 3 * 360, 1)
    compare = page.locator("table.compare tr").all_inner_texts()
    assert any(line.startswith("normalized_exact_match\t0.667\t0.333\t+0.333") for line in compare), compare
    rows = page.locator("table.rows tr")
    assert rows.count() == 5 and "RuntimeError: the target failed" in rows.nth(4).inner_text()
    assert "4 <b>bold</b>" in rows.nth(3).inner_text()  # escaped, shown as text
    assert requests == [page_file.as_uri()]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "eval_report.png"), full_page=True)
