"""The statistics workbook, opened with openpyxl and checked cell by cell."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from bot.db import Database
from services import stats
from services.stats_export import build_export
from tests.stats_world import NOW, OCTOBER, POLICY, StatsWorld, build


@pytest.fixture
async def world(db: Database) -> StatsWorld:
    return await build(db)


async def workbook_of(world: StatsWorld, locale: str) -> bytes:
    async with world.db.reading() as session:
        unit = await stats.unit_by_code(session, "XS")
        return await build_export(session, unit, OCTOBER, NOW, POLICY, locale)


async def test_english_workbook_cell_by_cell(world: StatsWorld) -> None:
    book = load_workbook(io.BytesIO(await workbook_of(world, "en")))
    assert book.sheetnames == [
        "Issues",
        "Micro-wishes",
        "Visits",
        "Meetings",
        "Volunteers",
        "Points",
        "Departments",
        "Definitions",
    ]
    issues = book["Issues"]
    assert issues["A1"].value == "Issues · XS name (XS) · month 2026-10"
    assert [c.value for c in issues[2][:4]] == ["Unit", "Code", "Reported", "Rejected or duplicate"]
    assert issues.freeze_panes == "C3"
    assert issues.column_dimensions["A"].width == 24
    headers = [c.value for c in issues[2]]
    rows = {
        f"{row[1].value}{'*' if row[0].value == 'Total' else ''}": row
        for row in issues.iter_rows(min_row=3)
    }
    assert list(rows) == ["XC1", "XC2", "XS*"]
    reported = headers.index("Reported")
    assert [rows[k][reported].value for k in rows] == [4, 3, 7]
    share = rows["XS*"][headers.index("Accepted on time (share)")]
    assert share.value == pytest.approx(5 / 7)
    assert share.number_format == "0.0%"
    assert isinstance(share.value, float)
    median = rows["XS*"][headers.index("Median hours to resolve")]
    assert median.value == 45
    assert rows["XS*"][0].font.bold

    visits = book["Visits"]
    v_headers = [c.value for c in visits[2]]
    assert "Overdue: x_special" in v_headers
    total = visits[5]
    assert total[v_headers.index("Households")].value == 5
    assert total[v_headers.index("Overdue: x_special")].value == 1
    assert total[v_headers.index("Coverage (share)")].value == pytest.approx(0.4)

    volunteers = book["Volunteers"]
    vol_headers = [c.value for c in volunteers[2]]
    column = vol_headers.index("Volunteers")
    assert [r[column].value for r in volunteers.iter_rows(min_row=3)] == [2, 2, 3]

    league = book["Departments"]
    assert [c.value for c in league[3]] == [1, "dept", 2, 0.5, 0, 0.5]


async def test_chinese_headers_and_empty_shares(world: StatsWorld) -> None:
    book = load_workbook(io.BytesIO(await workbook_of(world, "zh_CN")))
    assert book.sheetnames[0] == "民情问题"
    sheet = book["民情问题"]
    assert [c.value for c in sheet[2][:3]] == ["单位", "代码", "上报数"]
    headers = [c.value for c in sheet[2]]
    xc2 = sheet[4]  # one rating in XC2, unsatisfied: a share of 0, not empty
    assert xc2[1].value == "XC2"
    assert xc2[headers.index("满意率")].value == 0
    assert sheet[5][0].value == "合计"
    meetings = book["会议"]
    assert [c.value for c in meetings[2][:3]] == ["单位", "代码", "召开会议"]


async def test_a_period_without_data_leaves_shares_and_medians_empty(world: StatsWorld) -> None:
    async with world.db.reading() as session:
        unit = await stats.unit_by_code(session, "XS")
        data = await build_export(session, unit, stats.parse_period("2025-01"), NOW, POLICY, "en")
    sheet = load_workbook(io.BytesIO(data))["Issues"]
    headers = [c.value for c in sheet[2]]
    total = sheet[5]
    assert total[headers.index("Reported")].value == 0
    assert total[headers.index("Accepted on time (share)")].value is None
    assert total[headers.index("Median hours to accept")].value is None
