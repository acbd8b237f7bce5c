"""Small charts drawn as inline SVG on the server (no chart library, no script), and the parsing
of the Prometheus text the admin health page charts.

Each chart is a ``<figure>`` whose SVG carries ``role="img"`` and a title, followed by the same
numbers as a table, so screen readers and text browsers get them too. Only presentation
attributes are used (the pages' CSP has no ``'unsafe-inline'`` styles).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 320
BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 110


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def bar_chart(series: Sequence[tuple[str, float]], *, title: str, chart_id: str, unit: str = "") -> str:
    """Horizontal bars, one per ``(label, value)``; the longest bar is the largest value."""
    rows = [(str(label), float(value)) for label, value in series]
    peak = max((v for _, v in rows), default=0.0) or 1.0
    height = max(1, len(rows)) * (BAR_HEIGHT + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - 60
    parts = [
        f'<figure class="chart" id="{escape(chart_id)}">',
        f"<figcaption>{escape(title)}</figcaption>",
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-labelledby="{escape(chart_id)}-t">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(rows):
        y = GAP + i * (BAR_HEIGHT + GAP)
        width = 0 if value <= 0 else max(1.0, span * value / peak)
        parts.append(
            f"<g><title>{escape(label)}: {escape(_fmt(value))}{escape(unit)}</title>"
            f'<text x="0" y="{y + 13}" fill="#c5c7e0" font-size="11">{escape(_short(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" rx="3" fill="#ff4f8b"></rect>'
            f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{y + 13}" fill="#f4f4fb" font-size="11">'
            f"{escape(_fmt(value))}{escape(unit)}</text></g>"
        )
    if not rows:
        parts.append('<text x="0" y="16" fill="#c5c7e0" font-size="11">—</text>')
    parts.append("</svg>")
    parts.append('<table class="sr"><tbody>')
    parts.extend(
        f"<tr><th>{escape(label)}</th><td>{escape(_fmt(value))}{escape(unit)}</td></tr>" for label, value in rows
    )
    parts.append("</tbody></table></figure>")
    return "".join(parts)


def column_chart(series: Sequence[tuple[str, float]], *, title: str, chart_id: str) -> str:
    """Vertical columns over time (oldest first), the first, middle and last labels shown below."""
    rows = [(str(label), float(value)) for label, value in series]
    peak = max((v for _, v in rows), default=0.0) or 1.0
    height, base = 120, 100
    step = WIDTH / max(1, len(rows))
    cid = escape(chart_id)
    parts = [
        f'<figure class="chart" id="{cid}">',
        f"<figcaption>{escape(title)}</figcaption>",
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-labelledby="{cid}-t">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#3a3d66"></line>',
    ]
    shown = {0, len(rows) // 2, len(rows) - 1}
    for i, (label, value) in enumerate(rows):
        h = 0 if value <= 0 else max(1.0, (base - 14) * value / peak)
        x = i * step + 2
        parts.append(
            f"<g><title>{escape(label)}: {escape(_fmt(value))}</title>"
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(1.0, step - 4):.1f}" height="{h:.1f}" rx="2" fill="#ff4f8b"></rect>'
            + (
                f'<text x="{x:.1f}" y="{base - h - 3:.1f}" fill="#f4f4fb" font-size="9">{escape(_fmt(value))}</text>'
                if value
                else ""
            )
            + (
                f'<text x="{x:.1f}" y="{base + 14}" fill="#c5c7e0" font-size="10">{escape(label)}</text>'
                if i in shown
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    parts.append('<table class="sr"><tbody>')
    parts.extend(f"<tr><th>{escape(label)}</th><td>{escape(_fmt(value))}</td></tr>" for label, value in rows)
    parts.append("</tbody></table></figure>")
    return "".join(parts)


def _short(label: str, size: int = 18) -> str:
    """A label that fits beside its bar: route templates lose their ``/api/v1`` prefix."""
    text = label.removeprefix("/api/v1")
    return text if len(text) <= size else text[: size - 1] + "…"


# --- Prometheus text format --------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (comments and malformed lines skipped)."""
    out: list[Sample] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(3) or "")}
        out.append(Sample(match.group(1), labels, value))
    return out


def total(samples: Sequence[Sample], name: str, **match: str) -> float:
    """The sum of ``name`` over samples whose labels include ``match``."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in match.items()))


def by_label(samples: Sequence[Sample], name: str, label: str) -> list[tuple[str, float]]:
    """``name`` summed per value of ``label``, largest first."""
    sums: dict[str, float] = {}
    for s in samples:
        if s.name == name:
            key = s.labels.get(label, "")
            sums[key] = sums.get(key, 0.0) + s.value
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


def status_classes(samples: Sequence[Sample]) -> list[tuple[str, float]]:
    """HTTP requests by status class (2xx … 5xx)."""
    classes = {"2xx": 0.0, "3xx": 0.0, "4xx": 0.0, "5xx": 0.0}
    for s in samples:
        if s.name == "halobuzz_http_requests_total":
            key = s.labels.get("status", "")[:1] + "xx"
            if key in classes:
                classes[key] += s.value
    return list(classes.items())


def latency_buckets(
    samples: Sequence[Sample], name: str = "halobuzz_http_request_duration_seconds"
) -> list[tuple[str, float]]:
    """Requests per latency band (the cumulative histogram buckets, differenced)."""
    cumulative: dict[float, float] = {}
    for s in samples:
        if s.name == f"{name}_bucket":
            le = s.labels.get("le", "")
            bound = math.inf if le == "+Inf" else float(le)
            cumulative[bound] = cumulative.get(bound, 0.0) + s.value
    bands: list[tuple[str, float]] = []
    previous = 0.0
    for bound in sorted(cumulative):
        count = cumulative[bound] - previous
        previous = cumulative[bound]
        label = "> last" if math.isinf(bound) else f"≤ {_fmt(bound * 1000)} ms"
        bands.append((label, max(count, 0.0)))
    return bands
