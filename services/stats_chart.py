"""The statistics chart: a PNG with the unit's trend over the last periods and its children
side by side. Rendered with matplotlib's Agg backend; callers run it off the event loop
(``asyncio.to_thread``), as it takes a few hundred milliseconds."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from services.stats import Report, TrendPoint

log = logging.getLogger(__name__)

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)
PACKAGED_CJK_FONT = ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf")
"""The Chinese font shipped with the ``mplfonts`` dependency (Noto Sans CJK SC), used when the
machine has none of :data:`CJK_FONTS`."""

SHARES: tuple[tuple[str, str, str], ...] = (
    ("issues_accepted_on_time_share", "按时受理", "On-time response"),
    ("issues_resolved_on_time_share", "按期办结", "On-time resolution"),
    ("issues_satisfied_share", "满意", "Satisfied"),
    ("households_covered_share", "走访覆盖", "Visit coverage"),
    ("meetings_attendance_share", "出席", "Attendance"),
)
CHILDREN_SHOWN = 12
UNITS_STACKED = 12
"""Rows in one combined chart (Telegram takes photos up to 10,000 px of width plus height)."""


@cache
def cjk_font() -> str | None:
    """A Chinese-capable font: one installed on this machine, else the one the ``mplfonts``
    package ships (registered with matplotlib on the first chart, not at start). Without
    either the chart is labelled in English and with unit codes (Chinese glyphs would show as
    boxes)."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    return found or packaged_cjk_font()


def packaged_cjk_font() -> str | None:
    """Register the packaged CJK font file with matplotlib; its family name, or None when the
    package or the file is missing (or not a plain file, as in a zipped install)."""
    package, name = PACKAGED_CJK_FONT
    try:
        font = resources.files(package).joinpath(name)
        if not isinstance(font, Path) or not font.is_file():
            raise FileNotFoundError(name)
        font_manager.fontManager.addfont(font)
        return str(font_manager.FontProperties(fname=font).get_name())
    except (ImportError, OSError, RuntimeError):
        log.warning("no CJK font: statistics charts are labelled in English", exc_info=True)
        return None


def render_chart(
    report: Report, points: Sequence[TrendPoint], locale: str, *, dpi: int = 110
) -> bytes:
    """The PNG: left the trend (issues reported as bars, on-time resolution and satisfaction
    as lines), right the children (or the unit itself) side by side on the main shares."""
    return render_charts([(report, points)], locale, dpi=dpi)


def render_charts(
    parts: Sequence[tuple[Report, Sequence[TrendPoint]]], locale: str, *, dpi: int = 110
) -> bytes:
    """Several units' charts in one PNG, one row each (trend | children), stacked so that a
    phone held upright shows them one under the other (the weekly digest of a coordinator of
    several communities). At most :data:`UNITS_STACKED` rows."""
    if not parts:
        raise ValueError("no chart to render")
    parts = parts[:UNITS_STACKED]
    font = cjk_font()
    chinese = locale != "en" and font is not None

    def text(zh: str, en: str) -> str:
        return zh if chinese else en

    def unit_name(code: str, name: str, name_en: str | None) -> str:
        if chinese:
            return name
        return name_en or code

    with matplotlib.rc_context({"font.family": [font, "DejaVu Sans"]} if font else None):
        figure = Figure(figsize=(11, 4.6 * len(parts)), dpi=dpi)
        axes = figure.subplots(len(parts), 2, width_ratios=(1.1, 1), squeeze=False)
        for (left, right), (report, points) in zip(axes, parts, strict=True):
            _draw(left, right, report, points, text, unit_name)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw(
    left: Axes,
    right: Axes,
    report: Report,
    points: Sequence[TrendPoint],
    text: Callable[[str, str], str],
    unit_name: Callable[[str, str, str | None], str],
) -> None:
    labels = [p.period.key for p in points]
    positions = list(range(len(points)))
    left.bar(
        positions, [p.reported for p in points], color="#9ecae1", label=text("上报", "Reported")
    )
    left.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
    left.set_ylabel(text("上报数", "Issues reported"))
    shares = left.twinx()
    shares.set_ylim(0, 105)
    shares.plot(
        positions,
        [_percent(p.resolved_on_time_share) for p in points],
        marker="o",
        color="#d62728",
        label=text("按期办结率 %", "On-time resolution %"),
    )
    shares.plot(
        positions,
        [_percent(p.satisfied_share) for p in points],
        marker="s",
        color="#2ca02c",
        label=text("满意率 %", "Satisfied %"),
    )
    shares.set_ylabel("%")
    handles = left.get_legend_handles_labels()
    more = shares.get_legend_handles_labels()
    left.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    unit = report.unit
    left.set_title(
        text("趋势", "Trend") + f" · {unit_name(unit.code, unit.name, unit.name_en)}",
        fontsize=10,
    )

    rows = [r for r in report.rows if not r.own][:CHILDREN_SHOWN]
    groups = (
        [(unit_name(r.unit.code, r.unit.name, r.unit.name_en), r.values) for r in rows]
        if rows
        else [(unit_name(unit.code, unit.name, unit.name_en), report.total)]
    )
    width = 0.8 / len(SHARES)
    for index, (key, zh, en) in enumerate(SHARES):
        values = [float(values.get(key) or 0) * 100 for _, values in groups]
        right.bar(
            [g + index * width - 0.4 + width / 2 for g in range(len(groups))],
            values,
            width,
            label=text(zh, en),
        )
    right.set_xticks(
        range(len(groups)), [name for name, _ in groups], rotation=30, ha="right", fontsize=8
    )
    right.set_ylim(0, 130)
    right.set_yticks(range(0, 101, 20))
    right.set_ylabel("%")
    right.legend(fontsize=7, loc="upper right", ncols=2)
    right.set_title(f"{text('各单位对比', 'Side by side')} · {report.period.key}", fontsize=10)


def _percent(share: float | None) -> float:
    """A share as a percentage; an undefined share is a gap in the line."""
    return math.nan if share is None else share * 100
