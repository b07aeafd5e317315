"""A self-contained HTML report of an eval run: the summary with bar charts of the means and
their 95 % intervals (inline SVG: no script, no network), a comparison when given, every row."""

from __future__ import annotations

import html
import json

BAR_WIDTH, CHART_HEIGHT = 360, 22


def render_html(run, compared=None) -> str:
    """The page for `run` (an `EvalRun`), with the paired differences against `compared` if given."""
    scaled = {m: s for m, s in run.summary.items() if s["mean"] is not None and 0 <= s["mean"] <= 1}
    rows = "".join(_summary_row(metric, entry, metric in scaled) for metric, entry in run.summary.items())
    parts = [f"<h1>Eval: {html.escape(run.name)}</h1>",
             f"<p>{len({r['index'] for r in run.rows})} examples, {len(run.rows)} runs, "
             f"{sum(1 for r in run.rows if r['error'])} errors.</p>",
             "<h2>Summary</h2><table class='summary'><tr><th>metric</th><th>mean</th><th>95 % interval</th>"
             f"<th>n</th><th>errors</th><th>chart</th></tr>{rows}</table>"]
    if compared is not None:
        diffs = run.compare(compared)
        lines = "".join(f"<tr><td>{html.escape(m)}</td><td>{_num(d['this'])}</td><td>{_num(d['other'])}</td>"
                        f"<td class='{'up' if (d['diff'] or 0) > 0 else 'down' if (d['diff'] or 0) < 0 else ''}'>"
                        f"{_num(d['diff'], sign=True)}</td><td>[{_num(d['ci_low'], sign=True)}, "
                        f"{_num(d['ci_high'], sign=True)}]</td><td>{d['n']}</td></tr>" for m, d in sorted(diffs.items()))
        parts.append(f"<h2>Against {html.escape(compared.name)}</h2><table class='compare'><tr><th>metric</th>"
                     f"<th>this</th><th>other</th><th>difference</th><th>95 % interval</th><th>pairs</th></tr>"
                     f"{lines}</table>")
    metrics = list(run.summary)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join(
        f"<tr class='{'error' if r['error'] else ''}'><td>{r['index']}</td><td>{_text(r['input'])}</td>"
        f"<td>{_text(r['reference'])}</td><td>{_text(r['output'] if r['error'] is None else r['error'])}</td>"
        + "".join(f"<td>{_num(r['scores'].get(m))}</td>" for m in metrics) + "</tr>" for r in run.rows)
    parts.append(f"<h2>Rows</h2><table class='rows'><tr><th>#</th><th>input</th><th>reference</th><th>output</th>"
                 f"{head}</tr>{body}</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Eval: {html.escape(run.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def _summary_row(metric: str, entry: dict, chart: bool) -> str:
    low, high = entry["ci_low"], entry["ci_high"]
    interval = f"[{_num(low)}, {_num(high)}]" if low is not None else ""
    return (f"<tr><td>{html.escape(metric)}</td><td>{_num(entry['mean'])}</td><td>{interval}</td><td>{entry['n']}</td>"
            f"<td>{entry['errors']}</td><td>{_bar(entry) if chart else ''}</td></tr>")


def _bar(entry: dict) -> str:
    """A bar for a mean in [0, 1] with its interval as a whisker."""
    mean, low, high = entry["mean"], entry["ci_low"], entry["ci_high"]
    x = lambda v: round(v * BAR_WIDTH, 1)  # noqa: E731
    return (f"<svg class='bar' width='{BAR_WIDTH}' height='{CHART_HEIGHT}' role='img' aria-label='mean {mean:.3f}'>"
            f"<rect width='{BAR_WIDTH}' height='{CHART_HEIGHT}' fill='#eeecf6'/>"
            f"<rect class='mean' width='{x(mean)}' height='{CHART_HEIGHT}' fill='#6d5bd0'/>"
            f"<line x1='{x(low)}' x2='{x(high)}' y1='11' y2='11' stroke='#1d1b26' stroke-width='2'/>"
            f"<line x1='{x(low)}' x2='{x(low)}' y1='5' y2='17' stroke='#1d1b26'/>"
            f"<line x1='{x(high)}' x2='{x(high)}' y1='5' y2='17' stroke='#1d1b26'/></svg>")


def _num(value, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _text(value, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return html.escape(text if len(text) <= limit else text[:limit] + " …")


STYLE = """body { font: 14px/1.45 system-ui, sans-serif; color: #1d1b26; margin: 24px; }
table { border-collapse: collapse; margin: 8px 0 20px; } th, td { border: 1px solid #ddd9ee; padding: 4px 8px;
text-align: left; vertical-align: top; } th { background: #f0eef8; } td { max-width: 40ch; overflow-wrap: anywhere; }
tr.error td { background: #fdecec; } td.up { color: #17692e; } td.down { color: #8a1c1c; } svg.bar { display: block; }"""
