"""Server-rendered SVG charts: no script, no inline style (colours come from classes in app.css)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

from minimarket.ar.money import format_number

# Narrow viewBox and large type: the same SVG stays legible from a 360 px phone to a desktop.
W, H = 480, 260
PAD_L, PAD_R, PAD_T, PAD_B = 52, 14, 30, 30
SUB = ' class="tick-sub"'  # a name's second line (a column's year): smaller


def _svg(label: str, body: str, height: int = H) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}" '
                  f'preserveAspectRatio="xMidYMid meet"><title>{escape(label)}</title>{body}</svg>')


def _scale(top: Decimal) -> Decimal:
    return top if top > 0 else Decimal(1)


def lines(label: str, days: Sequence[str], series: Sequence[tuple[str, str, Sequence[Decimal]]]) -> Markup:
    """One polyline per series (name, css class, values) over the same days, with a legend."""
    top = _scale(max((v for _, _, values in series for v in values), default=Decimal(0)))
    n = max(len(days) - 1, 1)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    parts = [f'<line class="axis" x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}"/>',
             f'<text class="tick" x="{PAD_L - 6}" y="{PAD_T + 10}" text-anchor="end">{format_number(top)}</text>',
             f'<text class="tick" x="{PAD_L - 6}" y="{H - PAD_B}" text-anchor="end">0</text>']
    # First, middle and last day; a short series names each day once (two days: no middle label over the last).
    named = {len(days) // 2: "middle", len(days) - 1: "end", 0: "start"} if days else {}
    for i, anchor in sorted(named.items()):
        if 0 <= i < len(days):
            x = PAD_L + plot_w * i / n
            parts.append(f'<text class="tick" x="{x:.1f}" y="{H - 6}" text-anchor="{anchor}">{escape(days[i])}</text>')
    for k, (name, css, values) in enumerate(series):
        points = " ".join(f"{PAD_L + plot_w * i / n:.1f},{H - PAD_B - float(v / top) * plot_h:.1f}"
                          for i, v in enumerate(values))
        parts.append(f'<polyline class="line {css}" points="{points}"/>')
        parts.append(f'<rect class="{css}" x="{PAD_L + k * 130}" y="4" width="14" height="14"/>'
                     f'<text class="legend" x="{PAD_L + 20 + k * 130}" y="17">{escape(name)}</text>')
    return _svg(label, "".join(parts))


def hbars(label: str, items: Sequence[tuple[str, Decimal]], fmt: Callable[[Decimal], str],
          links: Sequence[str] | None = None) -> Markup:
    """Horizontal bars with the name above each bar and its value at the end; optional links."""
    row = 42
    height = max(row * len(items) + 8, 40)
    top = _scale(max((v for _, v in items), default=Decimal(0)))
    parts = []
    for i, (name, value) in enumerate(items):
        y = 4 + i * row
        width = max(float(value / top) * (W - 150), 1.0) if value > 0 else 1.0
        bar = (f'<text class="bar-label" x="0" y="{y + 14}">{escape(name[:48])}</text>'
               f'<rect class="bar" x="0" y="{y + 19}" width="{width:.1f}" height="16"/>'
               f'<text class="bar-value" x="{width + 6:.1f}" y="{y + 33}">{escape(fmt(value))}</text>')
        parts.append(f'<a href="{escape(links[i])}">{bar}</a>' if links else bar)
    if not items:
        parts.append('<text class="tick" x="0" y="24">Sin datos todavía</text>')
    return _svg(label, "".join(parts), height)


def columns(label: str, names: Sequence[tuple[str, str]], values: Sequence[Decimal | None],
            fmt: Callable[[Decimal], str], value_fmt: Callable[[Decimal], str] | None = None) -> Markup:
    """Vertical columns on a zero line (negative values go down; None is drawn as a gap). `names`: each
    column's (full name, for its tooltip; what is written under it, lines split at a newline); its value is
    written over it with `value_fmt` (short) and in its tooltip with `fmt`."""
    value_fmt = value_fmt or fmt
    up = max((v for v in values if v is not None and v > 0), default=Decimal(0))
    down = max((-v for v in values if v is not None and v < 0), default=Decimal(0))
    span = _scale(up + down)
    top, bottom = PAD_T + 4, H - 44 - (16 if down else 0)  # room for the values over and under the columns
    zero = top + (bottom - top) * float(up / span) if up + down > 0 else bottom
    slot = (W - PAD_L - PAD_R) / max(len(values), 1)
    parts = [f'<line class="axis" x1="{PAD_L}" y1="{zero:.1f}" x2="{W - PAD_R}" y2="{zero:.1f}"/>']
    for i, ((name, written), value) in enumerate(zip(names, values, strict=True)):
        x = PAD_L + i * slot
        text = "".join(f'<tspan x="{x + slot / 2:.1f}" dy="{16 if k else 0}"{SUB if k else ""}>{escape(line)}</tspan>'
                       for k, line in enumerate(written.split("\n")))
        parts.append(f'<text class="tick" y="{H - 24}" text-anchor="middle">{text}</text>')
        if value is None:
            continue
        height = max(float(abs(value) / span) * (bottom - top), 1.0)
        y = zero - height if value >= 0 else zero
        css = "col-up" if value >= 0 else "col-down"
        parts.append(f'<rect class="{css}" x="{x + slot * 0.2:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{height:.1f}"><title>{escape(name)}: {escape(fmt(value))}</title></rect>')
        ty = y - 4 if value >= 0 else y + height + 13
        parts.append(f'<text class="col-value" x="{x + slot / 2:.1f}" y="{ty:.1f}" text-anchor="middle">'
                     f'{escape(value_fmt(value))}</text>')
    return _svg(label, "".join(parts))
