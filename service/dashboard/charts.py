"""The weekly trend as inline SVG charts (pygal), with no scripts and nothing fetched."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final
from xml.etree import ElementTree

import pygal
from markupsafe import Markup
from pygal.style import Style

# pygal adds a finder for its legacy map plugins to sys.meta_path when imported; lacking
# find_spec, it makes every later failed import (optional C modules) raise ImportWarning.
# Troth uses no map plugins.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

KEPT_COLOUR: Final = "#2f7d6d"
NOT_KEPT_COLOUR: Final = "#c9964a"
SCORE_COLOUR: Final = "#3a6ea5"

_STYLE: Final = {
    "background": "transparent",
    "plot_background": "transparent",
    "foreground": "#333333",
    "foreground_strong": "#222222",
    "foreground_subtle": "#d9d9d9",
    "font_family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "label_font_size": 13,
    "major_label_font_size": 13,
    "legend_font_size": 14,
    "title_font_size": 16,
}


def _config(title: str, colours: Sequence[str]) -> dict[str, Any]:
    return {
        "title": title,
        # No tooltip script: the page must work without JavaScript and fetch nothing.
        "js": [],
        "disable_xml_declaration": True,
        "width": 720,
        "height": 300,
        "legend_at_bottom": True,
        "legend_box_size": 14,
        "truncate_label": -1,
        "x_label_rotation": 0,
        "margin": 12,
        "style": Style(colors=tuple(colours), **_STYLE),
        "no_data_text": "No weeks to show yet",
    }


def _without_scripts(chart: Any) -> Markup:
    """The chart's SVG without pygal's configuration script (tooltips only; the page runs
    no scripts, and its Content-Security-Policy would refuse them)."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in [c for c in parent if c.tag == "script"]:
            parent.remove(child)
    # pygal built the tree and escapes every text it holds; serialising keeps it escaped.
    return Markup(ElementTree.tostring(tree, encoding="unicode"))  # noqa: S704


def _labels(weeks: Sequence[Mapping[str, Any]]) -> list[str]:
    return [week["week_start"].strftime("%d %b") for week in weeks]


def score_chart(weeks: Sequence[Mapping[str, Any]]) -> Markup:
    """The score at the end of each week, as a line on 0-100."""
    chart = pygal.Line(
        range=(0, 100),
        show_dots=True,
        dots_size=4,
        stroke_style={"width": 3},
        y_labels=[0, 25, 50, 75, 100],
        x_labels_major_every=max(1, len(weeks) // 6),
        show_minor_x_labels=False,
        **_config("Score at the end of each week", [SCORE_COLOUR]),
    )
    chart.x_labels = _labels(weeks)
    chart.add("Score", [round(week["score_exact"], 1) for week in weeks])
    return _without_scripts(chart)


def outcomes_chart(weeks: Sequence[Mapping[str, Any]]) -> Markup:
    """Promises kept and not kept in each week, as stacked bars."""
    kept = [week["kept"] + week["kept_late"] for week in weeks]
    not_kept = [week["broken"] + week["lapsed"] for week in weeks]
    most = max((a + b for a, b in zip(kept, not_kept, strict=True)), default=0)
    step = max(1, -(-most // 5))
    chart = pygal.StackedBar(
        x_labels_major_every=max(1, len(weeks) // 6),
        show_minor_x_labels=False,
        # Whole promises only: the axis counts them.
        y_labels=list(range(0, max(most, 1) + step, step)),
        **_config("Promises kept and not kept each week", [KEPT_COLOUR, NOT_KEPT_COLOUR]),
    )
    chart.x_labels = _labels(weeks)
    chart.add("Kept", kept)
    chart.add("Not kept", not_kept)
    return _without_scripts(chart)
