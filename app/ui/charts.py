"""Charts drawn on the server as inline SVG: bars, stacked bars and rates with a band.

No script and no ``style`` attribute (the screens' CSP allows neither): every colour is a
presentation attribute, from the Okabe-Ito colours the level badges use (triage.css).
Each chart is an ``<svg role="img">`` named by its ``<title>`` and described in words by
its ``<desc>``; the page puts a table of the same figures next to it. Nothing depends on
colour alone: series differ by shape and line pattern too, and the legend says so in
words. A count withheld by the report (``<5``) is never drawn as a number: it is a
hatched marker on the axis, explained by the legend ("fewer than 5, or hidden to protect
one"); a rate with no base is a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

HIDDEN = "<5"
# What a withheld count is: below 5, or hidden so that one below 5 cannot be worked out.
HIDDEN_WORDS = "fewer than 5, or hidden to protect one"
INK = "#0b0c0c"
GRID = "#b1b4b6"
# Okabe-Ito, as the level badges (triage.css): standard, medium, high.
PAPER, YELLOW, ORANGE, VERMILLION = "#ffffff", "#f0e442", "#e69f00", "#d55e00"
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 56, 44
FONT = 'font-family="Arial, sans-serif"'
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Value = int | float | str | None


@dataclass(frozen=True)
class Series:
    """One measure: its name in words, one value per month, and how it is drawn."""

    name: str
    values: Sequence[Value]
    fill: str = ORANGE
    dash: str | None = None  # stroke-dasharray of its line or segment border
    marker: str = "circle"  # rates: "circle" or "square"
    stroke_width: float = 1.5


def month_words(month: str) -> str:
    """``2026-03`` → ``Mar 2026``."""
    year, _, number = month.partition("-")
    return f"{MONTHS[int(number) - 1]} {year}"


def _nice_max(value: float) -> float:
    if value <= 5:
        return 5
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


class _Canvas:
    def __init__(self, chart_id: str, title: str, desc: str) -> None:
        self.id = chart_id
        self.parts: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart-svg" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}">',
            f'<title id="{chart_id}-title">{escape(title)}</title>',
            f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
            f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" '
            'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="6" height="6" fill="{PAPER}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{INK}" stroke-width="2.5"/>'
            "</pattern></defs>",
        ]
        self.legend_x, self.legend_y = LEFT, 8

    @property
    def hatch(self) -> str:
        return f"url(#{self.id}-hatch)"

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def legend(self, label: str, swatch: str) -> None:
        """A legend entry above the plot (two lines at most): ``swatch`` is drawn in a
        14 x 14 box at 0, 0."""
        width = 34 + int(len(label) * 7)
        if self.legend_x + width > WIDTH - RIGHT and self.legend_x > LEFT:
            self.legend_x, self.legend_y = LEFT, self.legend_y + 20
        self.add(
            f'<g class="legend-item" transform="translate({self.legend_x} {self.legend_y})">'
            f'{swatch}<text x="20" y="12" font-size="13" {FONT} fill="{INK}">'
            f"{escape(label)}</text></g>"
        )
        self.legend_x += width

    def hidden_legend(self) -> None:
        self.legend(
            HIDDEN_WORDS,
            f'<rect width="14" height="14" fill="{self.hatch}" stroke="{INK}"/>',
        )

    def axes(self, months: Sequence[str], top: float, percent: bool = False) -> None:
        plot_h = HEIGHT - TOP - BOTTOM
        for i in range(6):
            value = top * i / 5
            y = HEIGHT - BOTTOM - plot_h * i / 5
            label = f"{value * 100:.0f}%" if percent else f"{value:,.0f}"
            self.add(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                f'stroke="{GRID if i else INK}" stroke-width="1"/>'
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                f'{FONT} fill="{INK}">{label}</text>'
            )
        step = max(1, math.ceil(len(months) / 12))
        for i, month in enumerate(months):
            if i % step:
                continue
            x = self.x_centre(i, len(months))
            name = MONTHS[int(month[5:7]) - 1]
            year = month[:4] if i == 0 or month.endswith("-01") else ""
            self.add(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="12" {FONT} fill="{INK}">{name}</text>'
            )
            if year:
                self.add(
                    f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 31}" text-anchor="middle" '
                    f'font-size="12" {FONT} fill="{INK}">{year}</text>'
                )

    @staticmethod
    def slot(count: int) -> float:
        return (WIDTH - LEFT - RIGHT) / max(count, 1)

    def x_centre(self, i: int, count: int) -> float:
        return LEFT + self.slot(count) * (i + 0.5)

    @staticmethod
    def y(value: float, top: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / top

    def hidden_marker(
        self, i: int, count: int, month: str, base: float = HEIGHT - BOTTOM, name: str = ""
    ) -> None:
        width = min(self.slot(count) * 0.6, 40)
        x = self.x_centre(i, count) - width / 2
        what = f"{month_words(month)}, {name}" if name else month_words(month)
        self.add(
            f'<rect class="suppressed" x="{x:.1f}" y="{base - 8:.1f}" width="{width:.1f}" '
            f'height="8" fill="{self.hatch}" stroke="{INK}">'
            f"<title>{escape(what)}: {HIDDEN_WORDS}</title></rect>"
        )

    def markup(self) -> Markup:
        return Markup("".join([*self.parts, "</svg>"]))  # noqa: S704 (built from escaped parts)


def bar_chart(
    chart_id: str, title: str, desc: str, months: Sequence[str], series: Series
) -> Markup:
    """One bar per month (``class="bar"``), or a hatched marker where the count is hidden."""
    canvas = _Canvas(chart_id, title, desc)
    shown = [v for v in series.values if isinstance(v, int | float)]
    top = _nice_max(max(shown, default=0))
    canvas.legend(series.name, _swatch(series))
    if any(v == HIDDEN for v in series.values):
        canvas.hidden_legend()
    canvas.axes(months, top)
    width = min(canvas.slot(len(months)) * 0.6, 40)
    for i, (month, value) in enumerate(zip(months, series.values, strict=True)):
        if not isinstance(value, int | float):
            canvas.hidden_marker(i, len(months), month)
            continue
        x = canvas.x_centre(i, len(months)) - width / 2
        y = canvas.y(value, top)
        canvas.add(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{series.fill}" stroke="{INK}">'
            f"<title>{escape(month_words(month))}: {value:,}</title></rect>"
        )
    return canvas.markup()


def stacked_chart(
    chart_id: str, title: str, desc: str, months: Sequence[str], series: Sequence[Series]
) -> Markup:
    """One stack per month (``<g class="stack">``), the series from the bottom in order.

    A hidden count is a hatched marker (fixed height, not to scale) in its place in the
    stack, so that the stack's height is never a count that was withheld.
    """
    canvas = _Canvas(chart_id, title, desc)
    heights = [
        sum(v for v in column if isinstance(v, int | float))
        for column in zip(*(s.values for s in series), strict=True)
    ]
    top = _nice_max(max(heights, default=0) * 1.05)
    for s in series:
        canvas.legend(s.name, _swatch(s))
    if any(v == HIDDEN for s in series for v in s.values):
        canvas.hidden_legend()
    canvas.axes(months, top)
    width = min(canvas.slot(len(months)) * 0.6, 40)
    for i, month in enumerate(months):
        x = canvas.x_centre(i, len(months)) - width / 2
        y = float(HEIGHT - BOTTOM)
        parts = [f'<g class="stack" data-month="{escape(month)}">']
        for s in series:
            value = s.values[i]
            if isinstance(value, int | float):
                h = (HEIGHT - BOTTOM) - canvas.y(value, top)
                if h <= 0:
                    continue
                y -= h
                parts.append(
                    f'<rect class="segment" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{h:.1f}" fill="{s.fill}" stroke="{INK}"'
                    f' stroke-width="{s.stroke_width}"{_dash(s)}>'
                    f"<title>{escape(month_words(month))}, {escape(s.name)}: {value:,}</title>"
                    "</rect>"
                )
            elif value == HIDDEN:
                y -= 8
                parts.append(
                    f'<rect class="suppressed" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="8" fill="{canvas.hatch}" stroke="{INK}">'
                    f"<title>{escape(month_words(month))}, {escape(s.name)}: {HIDDEN_WORDS}"
                    "</title></rect>"
                )
        parts.append("</g>")
        canvas.add("".join(parts))
    return canvas.markup()


def rate_chart(
    chart_id: str,
    title: str,
    desc: str,
    months: Sequence[str],
    series: Sequence[Series],
    band: tuple[float, float] | None = None,
    band_label: str = "",
) -> Markup:
    """Rates (0-1) per month as points joined by lines, a gap where a rate has no base,
    a hatched marker on the axis where it is withheld, and an optional shaded band."""
    canvas = _Canvas(chart_id, title, desc)
    shown = [v for s in series for v in s.values if isinstance(v, int | float)]
    top = max(0.5, math.ceil(max(shown, default=0) * 4) / 4)
    top = min(top, 1.0) if max(shown, default=0) <= 1 else top
    if band is not None:
        canvas.legend(
            band_label,
            f'<rect width="14" height="14" fill="{YELLOW}" fill-opacity="0.6" stroke="{INK}" '
            'stroke-dasharray="3 2"/>',
        )
        low, high = canvas.y(band[0], top), canvas.y(band[1], top)
        canvas.add(
            f'<rect class="band" x="{LEFT}" y="{high:.1f}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{low - high:.1f}" fill="{YELLOW}" fill-opacity="0.6" stroke="{INK}" '
            f'stroke-dasharray="3 2"><title>{escape(band_label)}</title></rect>'
        )
    for s in series:
        canvas.legend(
            s.name,
            f'<line x1="-3" y1="7" x2="17" y2="7" stroke="{INK}" stroke-width="2"{_dash(s)}/>'
            + _point(s, 7, 7),
        )
    if any(v == HIDDEN for s in series for v in s.values):
        canvas.hidden_legend()
    canvas.axes(months, top, percent=True)
    for j, s in enumerate(series):
        runs: list[list[tuple[float, float]]] = [[]]
        points = []
        for i, (month, value) in enumerate(zip(months, s.values, strict=True)):
            if not isinstance(value, int | float):
                if runs[-1]:
                    runs.append([])
                if value == HIDDEN:  # one row of markers per series, the first lowest
                    canvas.hidden_marker(i, len(months), month, HEIGHT - BOTTOM - 10 * j, s.name)
                continue
            x, y = canvas.x_centre(i, len(months)), canvas.y(float(value), top)
            runs[-1].append((x, y))
            label = f"{escape(month_words(month))}, {escape(s.name)}: {value * 100:.1f}%"
            points.append(f'<g class="point">{_point(s, x, y)}<title>{label}</title></g>')
        for run in runs:
            if len(run) > 1:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                canvas.add(
                    f'<polyline class="line" points="{coords}" fill="none" stroke="{INK}" '
                    f'stroke-width="2"{_dash(s)}/>'
                )
        canvas.add("".join(points))
    return canvas.markup()


def _dash(series: Series) -> str:
    return f' stroke-dasharray="{series.dash}"' if series.dash else ""


def _swatch(series: Series) -> str:
    return (
        f'<rect width="14" height="14" fill="{series.fill}" stroke="{INK}" '
        f'stroke-width="{series.stroke_width}"{_dash(series)}/>'
    )


def _point(series: Series, x: float, y: float) -> str:
    if series.marker == "square":
        return (
            f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" '
            f'fill="{series.fill}" stroke="{INK}" stroke-width="1.5"/>'
        )
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{series.fill}" stroke="{INK}" '
        'stroke-width="1.5"/>'
    )
