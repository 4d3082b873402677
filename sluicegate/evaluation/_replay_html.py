"""The replay report as one self-contained HTML page, with a spend-over-time chart.

The page has no scripts and loads nothing: styles are inline and the chart is an inline
SVG, so the file can be mailed, attached to a ticket or opened offline. Every value from
the workload or the gateway is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from sluicegate import api
from sluicegate.evaluation import _replay

_WIDTH, _HEIGHT = 720, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 90, 20, 20, 50
_TICKS = 5

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.spend { stroke: #1f6feb; } .cloud { stroke: #d73a49; stroke-dasharray: 6 4; }
"""


def render(report: _replay.ReplayReport, *, title: str) -> str:
    """Render the report as an HTML page titled ``title``."""
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _summary_table(report),
        "<h2>Spend over time</h2>",
        spend_chart(report),
        "<h2>Routes and decisions</h2>",
        _count_table("route", report.routes),
        _count_table("decision", report.decisions),
        "<h2>Rejections and errors</h2>",
        _count_table("rejection (HTTP 429)", report.rejections),
        _count_table("error", report.errors),
        "<h2>Latency per route</h2>",
        _latency_table(report),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _summary_table(report: _replay.ReplayReport) -> str:
    rows = [
        ("requests sent", str(report.requested)),
        ("answered", str(report.answered)),
        ("did not finish (time bound)", str(report.unfinished)),
        ("duration", f"{report.elapsed_seconds:.1f} s"),
        ("escalations", str(report.escalations)),
        ("spend (USD)", api.format_usd(report.spend_nano)),
        (
            "all-cloud cost of the same answers (USD)",
            "not computed" if report.all_cloud_nano is None else api.format_usd(report.all_cloud_nano),
        ),
    ]
    cells = "".join(f"<tr><th>{html.escape(name)}</th><td class=\"number\">{html.escape(value)}</td></tr>" for name, value in rows)
    return f"<table>{cells}</table>"


def _count_table(heading: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"<p>No {html.escape(heading)}s.</p>"
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td class=\"number\">{count}</td></tr>" for name, count in sorted(counts.items())
    )
    return f"<table><tr><th>{html.escape(heading)}</th><th>requests</th></tr>{cells}</table>"


def _latency_table(report: _replay.ReplayReport) -> str:
    if not report.latency:
        return "<p>No response carried a route.</p>"
    cells = "".join(
        f"<tr><td>{html.escape(route)}</td><td class=\"number\">{latency.requests}</td>"
        f"<td class=\"number\">{latency.p50_ms:.1f}</td><td class=\"number\">{latency.p99_ms:.1f}</td></tr>"
        for route, latency in report.latency.items()
    )
    return f"<table><tr><th>route</th><th>requests</th><th>p50 ms</th><th>p99 ms</th></tr>{cells}</table>"


def spend_chart(report: _replay.ReplayReport) -> str:
    """Draw cumulative spend, and the all-cloud cost when priced, against seconds since the start as an SVG."""
    if not report.timeline:
        return "<p>No request finished, so there is no spend to draw.</p>"
    end_seconds = max(report.timeline[-1][0], 1e-9)
    max_nano = max(max(spend, cloud or 0) for _, spend, cloud in report.timeline)
    step_nano = _nice_step(max_nano)
    tick_count = max(1, -(-max_nano // step_nano))
    top_nano = step_nano * tick_count

    def x(seconds: float) -> float:
        return _LEFT + seconds / end_seconds * (_WIDTH - _LEFT - _RIGHT)

    def y(nano: int) -> float:
        return _HEIGHT - _BOTTOM - nano / top_nano * (_HEIGHT - _TOP - _BOTTOM)

    spend_points = [(seconds, spend) for seconds, spend, _ in report.timeline]
    lines = [_polyline(_steps(spend_points), x=x, y=y, css="spend")]
    legend = ["<tspan fill=\"#1f6feb\">— spend</tspan>"]
    if report.all_cloud_nano is not None:
        cloud_points = [(seconds, cloud or 0) for seconds, _, cloud in report.timeline]
        lines.append(_polyline(_steps(cloud_points), x=x, y=y, css="cloud"))
        legend.append("<tspan fill=\"#d73a49\"> - - all-cloud cost</tspan>")

    # Short replays need more decimals to tell the time ticks apart.
    decimals = 2 if end_seconds < 1 else 1 if end_seconds < 100 else 0
    ticks = []
    for step in range(tick_count + 1):
        nano = step_nano * step
        ticks.append(f'<text x="{_LEFT - 6}" y="{y(nano):.1f}" text-anchor="end" dominant-baseline="middle">{api.format_usd(nano)}</text>')
    for step in range(_TICKS + 1):
        seconds = end_seconds * step / _TICKS
        ticks.append(f'<text x="{x(seconds):.1f}" y="{_HEIGHT - _BOTTOM + 18}" text-anchor="middle">{seconds:.{decimals}f}</text>')

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        'font-size="12" role="img" aria-label="cumulative spend in USD against seconds since the replay started">'
        f'<line x1="{_LEFT}" y1="{_HEIGHT - _BOTTOM}" x2="{_WIDTH - _RIGHT}" y2="{_HEIGHT - _BOTTOM}" stroke="#888"/>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_HEIGHT - _BOTTOM}" stroke="#888"/>'
        + "".join(ticks)
        + "".join(lines)
        + f'<text x="{(_LEFT + _WIDTH - _RIGHT) / 2}" y="{_HEIGHT - 10}" text-anchor="middle">seconds since start</text>'
        + f'<text x="{_LEFT + 8}" y="{_TOP + 12}">USD: {"".join(legend)}</text>'
        + "</svg>"
    )


def _nice_step(max_nano: int) -> int:
    # The smallest step of 1, 2 or 5 times a power of ten (in nano-USD) that reaches
    # `max_nano` in at most `_TICKS` steps, so tick labels are round amounts.
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude * _TICKS >= max_nano:
                return factor * magnitude
        magnitude *= 10


def _steps(points: list[tuple[float, int]]) -> list[tuple[float, int]]:
    # Spend jumps when a response arrives, so the line holds its level until then.
    stepped = [(0.0, 0)]
    for seconds, nano in points:
        stepped.append((seconds, stepped[-1][1]))
        stepped.append((seconds, nano))
    return stepped


def _polyline(
    points: list[tuple[float, int]],
    *,
    x: Callable[[float], float],
    y: Callable[[int], float],
    css: str,
) -> str:
    coordinates = " ".join(f"{x(seconds):.1f},{y(nano):.1f}" for seconds, nano in points)
    return f'<polyline class="{css}" fill="none" stroke-width="2" points="{coordinates}"/>'
