"""`gridbot households import`: the spreadsheets communities already keep, every bad row reported
with its row number and reason, nothing half-imported, idempotent by address."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.db import Database
from bot.i18n import translator
from models.households import Household
from models.members import Role
from services import households as hh
from services.access import Actor
from services.demo import seed_demo
from services.org import import_org
from tests.households_world import NOW, POLICY, World, empty_registry, xlsx

ROOT = Path(__file__).resolve().parents[2]
HEADER: list[object] = [
    "楼栋",
    "地址",
    "门牌号",
    "人数",
    "标签",
    "联系人",
    "联系电话",
    "备注",
    "负责人",
    "上次走访",
]


@pytest.fixture
async def world(demo_db: Database) -> World:
    world = await World(demo_db).load()
    await world.person(7002, "李明", (Role.volunteer, "G1"), phone="13800000002")
    await world.person(7009, "赵六", (Role.volunteer, "G3"), phone="13800000009")
    return world


async def run_import(
    world: World, data: bytes, name: str = "住户.xlsx", **options: bool
) -> hh.ImportReport:
    sheet = hh.read_household_bytes(data, name)
    async with world.db.transaction() as session:
        return await hh.import_households(session, Actor.cli(), sheet, NOW, POLICY, **options)


async def households(world: World) -> list[Household]:
    async with world.db.transaction() as session:
        return list(
            (await session.execute(select(Household).order_by(col(Household.id)))).scalars()
        )


GOOD_ROWS: list[list[object]] = [
    [
        "B1",
        "和平路88弄3号",
        "101",
        1,
        "独居老人",
        "王秀英",
        "13900001101",
        "腿脚不便",
        "",
        "2026-11-20",
    ],
    ["B1", "和平路88弄3号", "102", "3", "", "李建国", "021-5555 1102", "", "13800000002", ""],
    ["新德2号楼", "和平路88弄5号", "301", 4.0, "出租户", "孙磊", 13900001301, "", "tg:7002", ""],
    ["B3", "和平路90弄1号", "502", None, "特需对象、低保户", "周淑珍", None, None, None, None],
]
BAD_ROWS: list[list[object]] = [
    ["B9", "和平路1号", "1", "", "", "", "", "", "", ""],  # row 8: unknown building
    ["B1", "和平路88弄3号", "103", "", "", "", "12345", "", "", ""],  # row 9: bad phone
    ["B1", "和平路88弄3号 ", "１０１", "", "", "", "", "", "", ""],  # row 10: same as row 3
    ["B1", "和平路88弄3号", "104", "", "孤寡", "", "", "", "", ""],  # row 11: unknown tag
    ["B1", "和平路88弄3号", "105", "三", "", "", "", "", "", ""],  # row 12: bad size
    ["B4", "光明路1号", "1", "", "", "", "", "", "13800000002", ""],  # row 13: cannot visit G3
    ["B1", "和平路88弄3号", "106", "", "", "", "", "", "", "2027-01-01"],  # row 14: future
    ["", "和平路88弄3号", "107", "", "", "", "", "", "", ""],  # row 15: no building
    ["B1", "", "", "", "", "王", "", "", "", ""],  # row 16: no address
]


def realistic_sheet() -> bytes:
    """A title row above the header (as many community sheets have), four good rows, an empty
    row, then one bad row of each kind."""
    return xlsx([HEADER, *GOOD_ROWS, [], *BAD_ROWS], title="新德社区住户台账（2026年11月）")


async def test_a_sheet_with_bad_rows_imports_nothing_and_names_every_row(world: World) -> None:
    with pytest.raises(hh.HouseholdImportError) as failure:
        await run_import(world, realistic_sheet())
    report = failure.value.report
    t = translator("zh_CN")
    assert [p.render(t) for p in report.problems] == [
        "第 8 行：找不到楼栋“B9”",
        "第 9 行：电话“12345”不是有效的手机号或座机号",
        "第 10 行：与第 3 行是同一地址",
        "第 11 行：没有“孤寡”这个标签（现有：特需对象、独居老人、残疾人、低保户、空置房、出租户）",
        "第 12 行：人数“三”不是 1 到 50 之间的整数",
        "第 13 行：负责人“13800000002”没有楼栋 B4 的走访权限",
        "第 14 行：上次走访日期 2027-01-01 还没到",
        "第 15 行：没有填楼栋",
        "第 16 行：地址和门牌号都没有填",
    ]
    assert (report.rows, report.bad_rows) == (13, 9)
    assert await households(world) == [], "nothing half-imported"


async def test_partial_import_writes_the_good_rows_whole(world: World) -> None:
    report = await run_import(world, realistic_sheet(), partial=True)
    assert (report.created, report.updated, report.skipped) == (4, 0, 9)
    rows = await households(world)
    assert [(h.door, h.phone) for h in rows] == [
        ("101", "13900001101"),
        ("102", "02155551102"),
        ("301", "13900001301"),
        ("502", None),
    ]
    elderly, shared, rented, special = rows
    assert elderly.interval_days == 14
    visited = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # noon in Shanghai
    assert elderly.last_visited_at == visited
    assert elderly.due_at == visited + timedelta(days=14)
    assert special.interval_days == 7
    assert special.due_at == NOW + timedelta(days=7), "never visited: due one interval on"
    assert rented.interval_days == 90
    assert shared.assignee_id is not None
    assert shared.assignee_id == rented.assignee_id


async def test_importing_again_changes_nothing_and_empty_cells_erase_nothing(
    world: World,
) -> None:
    await run_import(world, xlsx([HEADER, *GOOD_ROWS]))
    again = await run_import(world, xlsx([HEADER, *GOOD_ROWS]))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    changed = [row[:] for row in GOOD_ROWS]
    changed[0][6] = "13900009999"
    changed[0][5] = ""
    changed[3][4] = "独居老人"
    report = await run_import(world, xlsx([HEADER, *changed]))
    assert (report.created, report.updated, report.unchanged) == (0, 2, 2)
    rows = await households(world)
    assert rows[0].phone == "13900009999"
    assert rows[0].contact_name == "王秀英", "an empty cell keeps what is stored"
    assert rows[3].interval_days == 14, "a tags cell replaces the tags"
    assert len(rows) == 4
    assert [days for days, _ in await world.cadences(rows[3].id or 0)] == [7, 14]  # 特需 → 独居
    assert [days for days, _ in await world.cadences(rows[0].id or 0)] == [rows[0].interval_days]


async def test_csv_saved_by_chinese_excel_with_english_headers(world: World) -> None:
    text = "building,address,door,tags,phone\nB1,和平路88弄3号,101,独居老人,13900001101\n"
    report = await run_import(world, text.encode("gb18030"), "households.csv")
    assert report.created == 1
    utf8 = "\ufeff楼号;住址;房号\nB2;和平路88弄5号;201\n".encode()
    assert (await run_import(world, utf8, "b.csv")).created == 1


async def test_a_building_name_shared_by_two_grids_must_be_given_by_code(world: World) -> None:
    async with world.db.transaction() as session:
        await import_org(
            session,
            "units:\n  - {code: B5, kind: building, name: 新德1号楼, parent: G2}\n",
        )
    with pytest.raises(hh.HouseholdImportError) as failure:
        await run_import(world, xlsx([["楼栋", "门牌号"], ["新德1号楼", "101"]]))
    assert failure.value.report.problems[0].render(translator("en")) == (
        'Row 2: the building name "新德1号楼" is not unique; use its code (B1, B5)'
    )


@pytest.mark.parametrize(
    ("data", "name", "key"),
    [
        (b"PK\x03\x04 not really a workbook", "台账.xlsx", "households.file_unreadable"),
        (b"\xd0\xcf\x11\xe0", "台账.xls", "households.file_old_xls"),
        (b"%PDF-1.4", "台账.pdf", "households.file_format"),
        (b"", "empty.csv", "households.file_empty"),
        ("姓名,电话\n王,13900001101\n".encode(), "x.csv", "households.file_missing_columns"),
        ("楼栋,姓名\nB1,王\n".encode(), "x.csv", "households.file_missing_columns"),
        ("楼栋,电话,手机\nB1,1,2\n".encode(), "x.csv", "households.file_duplicate_column"),
    ],
)
async def test_a_file_that_cannot_be_used_imports_nothing(
    world: World, data: bytes, name: str, key: str
) -> None:
    with pytest.raises(hh.HouseholdFileError) as failure:
        await run_import(world, data, name)
    assert failure.value.problem.key == key
    assert failure.value.problem.row == 0
    assert await households(world) == []


async def test_fifty_thousand_rows_with_one_bad_phone_at_the_end(world: World) -> None:
    lines = ["楼栋,地址,门牌号,电话"]
    lines += [f"B{1 + i % 3},和平路{i // 100}号,{i % 100},139{i:08d}" for i in range(49_999)]
    lines.append("B1,和平路999号,1,139-not-a-number")
    with pytest.raises(hh.HouseholdImportError) as failure:
        await run_import(world, "\n".join(lines).encode(), "big.csv")
    report = failure.value.report
    assert report.rows == 50_000
    assert [(p.row, p.key) for p in report.problems] == [(50_001, "households.import_bad_phone")]
    async with world.db.transaction() as session:
        count = (await session.execute(select(func.count()).select_from(Household))).scalar_one()
    assert count == 0


async def test_the_documented_example_file_imports_into_the_demo_org(world: World) -> None:
    example = ROOT / "docs" / "households" / "example.xlsx"
    sheet = hh.read_household_file(example)
    async with world.db.transaction() as session:
        report = await hh.import_households(session, Actor.cli(), sheet, NOW, POLICY)
    assert (report.created, report.problems) == (len(hh.TEMPLATE_EXAMPLE), [])
    csv_sheet = hh.read_household_file(ROOT / "docs" / "households" / "example.csv")
    assert [r.cells for r in csv_sheet.rows] == [
        {k: hh._cell_text(v) for k, v in r.cells.items()} for r in sheet.rows
    ]
    generated = hh.read_household_bytes(hh.template_workbook(), "template.xlsx")
    assert [r.cells for r in generated.rows] == [r.cells for r in sheet.rows]


def test_cli_reports_rows_and_imports_nothing_then_imports_with_partial(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def seed() -> None:
        db = Database(database_url)
        async with db.transaction() as session:
            await seed_demo(session, NOW)
        await empty_registry(db)
        await db.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    sheet = tmp_path / "台账.xlsx"
    sheet.write_bytes(xlsx([HEADER, GOOD_ROWS[0], BAD_ROWS[0]]))
    runner = CliRunner()
    failed = runner.invoke(app, ["households", "import", str(sheet), "--report", "bad.csv"])
    assert failed.exit_code == 1
    assert "第 3 行：找不到楼栋“B9”" in failed.stderr
    assert "有 1 行有问题，没有导入任何内容" in failed.stderr
    assert (tmp_path / "bad.csv").read_text(encoding="utf-8-sig").strip() == "3,找不到楼栋“B9”"
    done = runner.invoke(app, ["households", "import", str(sheet), "--partial"])
    assert done.exit_code == 0, done.output
    assert "共 2 行：新增 1 户，更新 0 户，未变 0 户，跳过 1 行。" in done.stdout
    unreadable = tmp_path / "broken.xlsx"
    unreadable.write_bytes(b"garbage")
    broken = runner.invoke(app, ["households", "import", str(unreadable)])
    assert broken.exit_code == 2
    assert "无法读取这个文件" in broken.stderr
