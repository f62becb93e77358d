"""The statistics report on a hand-made data set (tests/stats_world.py): every expected figure
below is worked out by hand from that file, not copied from a run."""

from __future__ import annotations

import struct
import warnings
from datetime import date
from pathlib import Path

import pytest
from matplotlib import font_manager

from bot.db import Database
from services import stats, stats_chart
from services.errors import InvalidInput, NotFound, PermissionDenied
from services.stats import METRICS, Period, PeriodKind, Rollup, parse_period
from tests.stats_world import NOW, OCTOBER, POLICY, StatsWorld, build


@pytest.fixture
async def world(db: Database) -> StatsWorld:
    return await build(db)


async def street_report(world: StatsWorld, period: Period = OCTOBER) -> stats.Report:
    actor = await world.actor("street")
    async with world.db.reading() as session:
        return await stats.report(session, actor, world.id("XS"), period, NOW, POLICY)


def by_code(report: stats.Report) -> dict[str, stats.Values]:
    return {row.unit.code + ("*" if row.own else ""): row.values for row in report.rows}


async def test_issue_figures_per_community_and_for_the_street(world: StatsWorld) -> None:
    report = await street_report(world)
    rows = by_code(report)
    assert list(rows) == ["XC1", "XC2"]
    c1, c2, total = rows["XC1"], rows["XC2"], report.total
    # XC1: i1, i2 (XG1), i3 (XG2), i4 (on XC1 itself).
    assert c1["issues_reported"] == 4
    assert c1["issues_accepted_on_time"] == 2  # i1, i3 (i2 escalated, i4 never answered)
    assert c1["issues_resolved"] == 3
    assert c1["issues_resolved_on_time"] == 3
    assert c1["issues_reopened"] == 1  # i3, reopened twice, counts once
    assert c1["issues_overdue_now"] == 2  # i4 and the one from 30 September
    assert (c1["issues_rated_satisfied"], c1["issues_rated_basic"]) == (1, 1)
    assert (c1["issues_rated_unsatisfied"], c1["issues_rated_none"]) == (2, 1)
    assert c1["issues_satisfied_share"] == pytest.approx(1 / 5)
    assert c1["issues_median_hours_to_accept"] == pytest.approx(1.0)  # 0.5, 1, 3
    assert c1["issues_median_hours_to_resolve"] == pytest.approx(40.0)  # 20, 40, 50
    # XC2: i5 rejected, i6 resolved late, i7 reopened.
    assert c2["issues_reported"] == 3
    assert c2["issues_dismissed"] == 1
    assert c2["issues_to_handle"] == 2
    assert c2["issues_accepted_on_time"] == 3
    assert c2["issues_resolved"] == 1
    assert c2["issues_resolved_on_time"] == 0
    assert c2["issues_resolved_on_time_share"] == 0
    assert c2["issues_reopened"] == 1
    assert c2["issues_overdue_now"] == 0
    assert c2["issues_median_hours_to_resolve"] == pytest.approx(90.0)
    # The street: counts add up, shares and medians are recomputed from the rows.
    assert total["issues_reported"] == 7
    assert total["issues_accepted_on_time_share"] == pytest.approx(5 / 7)
    assert total["issues_resolved_on_time_share"] == pytest.approx(3 / 6)
    assert total["issues_rating_asked"] == 6
    assert total["issues_unsatisfied_share"] == pytest.approx(3 / 6)
    assert total["issues_median_hours_to_accept"] == pytest.approx(1.0)
    # 20, 40, 50, 90: the middle two, not the mean of the children's medians (65).
    assert total["issues_median_hours_to_resolve"] == pytest.approx(45.0)


async def test_wish_figures(world: StatsWorld) -> None:
    report = await street_report(world)
    c1, c2, total = by_code(report)["XC1"], by_code(report)["XC2"], report.total
    # w1 was claimed twice (released in between): one wish claimed.
    assert [c1[k] for k in ("wishes_submitted", "wishes_approved", "wishes_claimed")] == [2, 2, 2]
    assert [c1[k] for k in ("wishes_fulfilled", "wishes_confirmed")] == [1, 1]
    assert c1["wishes_median_days_to_fulfil"] == pytest.approx(5.0)
    assert [c2[k] for k in ("wishes_submitted", "wishes_approved", "wishes_claimed")] == [2, 1, 1]
    assert [c2[k] for k in ("wishes_fulfilled", "wishes_confirmed")] == [1, 0]
    assert total["wishes_submitted"] == 4
    assert total["wishes_median_days_to_fulfil"] == pytest.approx(3.0)  # 1 and 5


async def test_visit_coverage_at_the_end_of_the_period(world: StatsWorld) -> None:
    report = await street_report(world)
    c1, c2, total = by_code(report)["XC1"], by_code(report)["XC2"], report.total
    # h2's cadence changed to 7 days on 25 October: at the end of October (the snapshot) its
    # visit of 10 October, 21 days before, no longer covers it.
    assert [c1[k] for k in ("households", "households_covered", "households_overdue")] == [4, 1, 2]
    assert c1["visits_logged"] == 3
    assert [c2[k] for k in ("households", "households_covered", "households_overdue")] == [1, 1, 0]
    assert total["households_covered_share"] == pytest.approx(2 / 5)
    assert report.overdue_by_tag == {"x_special": 1, "x_elderly": 1}


async def test_a_past_period_is_measured_by_the_cadence_then_in_force(world: StatsWorld) -> None:
    # Week 42 (12-18 October) ends on 19 October 00:00 in Shanghai (18 October 16:00 UTC),
    # before h2's cadence changed from 90 to 7 days (25 October).
    report = await street_report(world, parse_period("2026-W42"))
    c1, c2 = by_code(report)["XC1"], by_code(report)["XC2"]
    # XC1: h1 (its visit is on 20 October, later; filed in January: overdue), h2 (met 8.7 days
    # before, within the 90 days then: covered), h3 (no counting visit: overdue); h4 is filed
    # on 28 October, later: not counted.
    assert [c1[k] for k in ("households", "households_covered", "households_overdue")] == [3, 1, 2]
    # XC2: h5 moved away on 15 October; h6 met 69.7 days before, within 90: covered.
    assert [c2[k] for k in ("households", "households_covered", "households_overdue")] == [1, 1, 0]
    assert report.total["households_covered_share"] == pytest.approx(2 / 4)
    assert report.overdue_by_tag == {"x_elderly": 1}  # h3; h2 is not overdue then
    # The current period (November, up to now, 5 November): h2 by its new 7 days, overdue.
    current = await street_report(world, parse_period("2026-11"))
    c1 = by_code(current)["XC1"]
    # h1: met 20 October, 16.1 days before, within 30: covered. h2: 26.1 days > 7: overdue.
    # h3: overdue. h4: filed 28 October, 8.1 days before, within its first 30: neither.
    assert [c1[k] for k in ("households", "households_covered", "households_overdue")] == [4, 1, 2]
    assert current.overdue_by_tag == {"x_special": 1, "x_elderly": 1}


async def test_meetings_members_and_points(world: StatsWorld) -> None:
    report = await street_report(world)
    c1, c2, total = by_code(report)["XC1"], by_code(report)["XC2"], report.total
    assert [c1[k] for k in ("meetings_held", "meetings_invited", "meetings_attended")] == [2, 10, 6]
    assert [c2[k] for k in ("meetings_held", "meetings_invited", "meetings_attended")] == [1, 5, 5]
    assert total["meetings_attendance_share"] == pytest.approx(11 / 15)
    # v1 volunteers in both communities: once in each row, once for the street.
    assert [c1[k] for k in ("volunteers", "volunteers_active", "volunteers_at_target")] == [2, 2, 1]
    assert [c2[k] for k in ("volunteers", "volunteers_active", "volunteers_at_target")] == [2, 2, 1]
    assert (c1["service_hours"], c2["service_hours"]) == (3.0, 2.0)
    assert [total[k] for k in ("volunteers", "volunteers_active", "volunteers_at_target")] == [
        3,
        3,
        1,
    ]
    assert total["service_hours"] == 3.0
    assert total["volunteers_at_target_share"] == pytest.approx(1 / 3)
    assert (c1["points_awarded"], c1["points_redeemed"]) == (10, 5)
    assert (c2["points_awarded"], c2["points_redeemed"]) == (5, 0)
    assert (total["points_awarded"], total["points_redeemed"]) == (15, 5)


async def test_counts_roll_up_as_sums_and_nothing_else_does(world: StatsWorld) -> None:
    report = await street_report(world)
    for metric in METRICS:
        if metric.rollup == Rollup.sum:
            assert report.total[metric.key] == sum(
                int(row.values[metric.key] or 0) for row in report.rows
            ), metric.key
    summed_volunteers = sum(int(row.values["volunteers"] or 0) for row in report.rows)
    assert summed_volunteers == 4 != report.total["volunteers"]
    shares = [row.values["meetings_attendance_share"] or 0 for row in report.rows]
    assert sum(shares) / len(shares) != pytest.approx(report.total["meetings_attendance_share"])


async def test_a_community_sees_its_grids_and_what_sits_on_itself(world: StatsWorld) -> None:
    actor = await world.actor("c1")
    async with world.db.reading() as session:
        report = await stats.report(session, actor, world.id("XC1"), OCTOBER, NOW, POLICY)
    rows = by_code(report)
    assert list(rows) == ["XG1", "XG2", "XC1*"]
    assert [rows[k]["issues_reported"] for k in rows] == [2, 1, 1]
    assert rows["XC1*"]["meetings_held"] == 2
    assert rows["XC1*"]["points_redeemed"] == 5
    assert report.parent is None  # the street is outside this coordinator's scope


async def test_scope(world: StatsWorld) -> None:
    coordinator = await world.actor("c1")
    leader = await world.actor("leader")
    worker = await world.actor("worker")
    async with world.db.reading() as session:
        for actor, code in ((coordinator, "XS"), (coordinator, "XC2"), (leader, "XC1"),
                            (worker, "XG1")):  # fmt: skip
            with pytest.raises(PermissionDenied):
                await stats.report(session, actor, world.id(code), OCTOBER, NOW, POLICY)
        grid = await stats.report(session, leader, world.id("XG1"), OCTOBER, NOW, POLICY)
        assert grid.rows == ()
        assert grid.total["issues_reported"] == 2
        with pytest.raises(NotFound):
            await stats.report(session, coordinator, 987654, OCTOBER, NOW, POLICY)
    assert stats.may_see_stats(leader)
    assert not stats.may_see_stats(worker)
    street = await world.actor("street")
    async with world.db.reading() as session:
        report = await stats.report(session, street, world.id("XC1"), OCTOBER, NOW, POLICY)
    assert report.parent is not None
    assert report.parent.code == "XS"


async def test_a_period_without_data_has_no_shares(world: StatsWorld) -> None:
    report = await street_report(world, parse_period("2025-01"))
    assert report.empty
    assert report.total["issues_accepted_on_time_share"] is None
    assert report.total["issues_median_hours_to_resolve"] is None
    assert not (await street_report(world)).empty


def test_periods() -> None:
    assert parse_period("2026-10") == OCTOBER
    assert parse_period("2026-W44").first == date(2026, 10, 26)
    assert parse_period("2026-Q4").end == date(2027, 1, 1)
    assert parse_period("2026").key == "2026"
    custom = parse_period("2026-10-01..2026-10-15")
    assert (custom.kind, custom.end, custom.key) == (
        PeriodKind.custom,
        date(2026, 10, 16),
        "2026-10-01..2026-10-15",
    )
    assert parse_period("2026-W44").key == "2026-W44"
    assert OCTOBER.previous().key == "2026-09"
    assert [p.key for p in parse_period("2026-02").trend(3)] == ["2025-12", "2026-01", "2026-02"]
    assert parse_period("2026-Q1").previous().key == "2025-Q4"
    for bad in ("2026-13", "2026-10-15..2026-10-01", "yesterday", "2026-W60", ""):
        with pytest.raises(InvalidInput):
            parse_period(bad)


async def test_department_league(world: StatsWorld) -> None:
    street = await world.actor("street")
    async with world.db.reading() as session:
        unit, table = await stats.league_for(session, street, world.id("XS"), OCTOBER, POLICY)
    assert unit.code == "XS"
    [row] = table
    # i6: reported in late, resolved after its handling deadline; i7: reported in on time,
    # resolved, then reopened (rework).
    assert (row.name, row.cases, row.reported_in) == ("dept", 2, 2)
    assert row.report_in_share == pytest.approx(0.5)
    assert row.resolved_share == 0
    assert row.rework_share == pytest.approx(0.5)
    assert row.rank == 1
    strict = stats.StatsPolicy(league_min_cases=3)
    async with world.db.reading() as session:
        [unranked] = await stats.league(session, unit, OCTOBER, strict)
    assert unranked.rank is None
    leader = await world.actor("leader")
    async with world.db.reading() as session:
        with pytest.raises(PermissionDenied):
            await stats.league_for(session, leader, world.id("XS"), OCTOBER, POLICY)


async def test_trend_and_chart(world: StatsWorld) -> None:
    street = await world.actor("street")
    async with world.db.reading() as session:
        report = await stats.report(session, street, world.id("XS"), OCTOBER, NOW, POLICY)
        points = await stats.trend(session, report.unit, OCTOBER, NOW, POLICY)
    assert [p.period.key for p in points][-3:] == ["2026-08", "2026-09", "2026-10"]
    assert [p.reported for p in points][-2:] == [1, 7]
    assert points[-1].resolved_on_time_share == pytest.approx(3 / 6)
    assert points[0].resolved_on_time_share is None
    for locale in ("zh_CN", "en"):
        png = stats_chart.render_chart(report, points, locale)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert 20_000 < len(png) < 2_000_000
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (1210, 506)


async def test_chinese_chart_uses_a_cjk_font(world: StatsWorld) -> None:
    """On any machine installed from the repository (fonts or none) the Chinese chart is drawn
    with a CJK font: the packaged one registers, and no glyph falls back to a box."""
    packaged = stats_chart.packaged_cjk_font()
    assert packaged == "Noto Sans CJK SC"
    chosen = stats_chart.cjk_font()
    assert chosen is not None
    resolved = font_manager.findfont(
        font_manager.FontProperties(family=[chosen, "DejaVu Sans"]), fallback_to_default=False
    )
    assert "DejaVu" not in Path(resolved).name
    face = font_manager.get_font(resolved)
    assert all(face.get_char_index(ord(c)) for c in "走访覆盖按期办结趋势各单位对比")
    street = await world.actor("street")
    async with world.db.reading() as session:
        report = await stats.report(session, street, world.id("XS"), OCTOBER, NOW, POLICY)
        points = await stats.trend(session, report.unit, OCTOBER, NOW, POLICY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zh = stats_chart.render_chart(report, points, "zh_CN")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    en = stats_chart.render_chart(report, points, "en")
    assert 20_000 < len(zh) < 2_000_000
    assert zh != en  # labelled in Chinese, not in the English fallback


async def test_sections_side_by_side_give_the_same_report(world: StatsWorld) -> None:
    """With ``reading`` (as the jobs call it) PostgreSQL runs the sections on connections of
    their own: every figure, row and tag count is the one of the hand-checked report above."""
    unit = (await street_report(world)).unit
    async with world.db.reading() as session:
        alone = await stats.build_report(session, unit, OCTOBER, NOW, POLICY)
        steps: list[tuple[int, int]] = []

        async def progress(step: int, total: int) -> None:
            steps.append((step, total))

        apart = await stats.build_report(
            session, unit, OCTOBER, NOW, POLICY, progress=progress, reading=world.db.reading
        )
    assert apart.total == alone.total
    assert apart.rows == alone.rows
    assert apart.overdue_by_tag == alone.overdue_by_tag
    assert apart.total["issues_reported"] == 7
    assert [step for step, _ in steps] == list(range(1, 8))
