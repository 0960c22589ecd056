"""Charts drawn on the server as plain SVG (presentation attributes only, so the page's CSP allows them)."""

from __future__ import annotations

from datetime import date

from adapters.web.layout import e
from bot.billing.money import format_usd

KIND_COLOURS = {"chat": "#2f5fb3", "image": "#d08a2f", "audio": "#3f9b6a", "embedding": "#8a63c6"}
OTHER_COLOUR = "#8a8f99"
WIDTH, HEIGHT = 900, 260
LEFT, BOTTOM, TOP = 64, 28, 12


def colour(kind: str) -> str:
    """Each kind's colour, the same in the chart and its legend."""
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


def legend(kinds: list[str]) -> str:
    """Coloured squares naming the kinds."""
    items = "".join(
        f'<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{colour(k)}"/>'
        f"</svg> {e(k)}</span>"
        for k in kinds
    )
    return f'<div class="legend">{items}</div>'


def stacked_days(days: list[tuple[date, dict[str, int]]], kinds: list[str], title: str) -> str:
    """Spend per day, each day's bar stacked by kind; every bar says its figures on hover."""
    peak = max((sum(costs.values()) for _, costs in days), default=0)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.72, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{e(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#b8bfcc"/>',
    ]
    for fraction in (0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        label = format_usd(round(peak * fraction)) if peak else "$0.00"
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#eceef2"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#5b6475">{e(label)}</text>'
        )
    step = max(1, round(len(days) / 8))
    for i, (day, costs) in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        total = sum(costs.values())
        detail = ", ".join(f"{k} {format_usd(costs[k])}" for k in kinds if costs.get(k))
        parts.append(f"<g><title>{day:%b %d}: {e(format_usd(total))}{' — ' + e(detail) if detail else ''}</title>")
        for kind in kinds:
            cost = costs.get(kind, 0)
            if not cost or not peak:
                continue
            h = plot_h * cost / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" fill="{colour(kind)}"/>'
            )
        parts.append("</g>")
        if i % step == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
                f'fill="#5b6475">{day:%b %d}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
