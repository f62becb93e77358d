"""`gridbot org import`: idempotent, every bad row reported with its line, all or nothing."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.db import Database
from models.org import Unit
from services.org import OrgImportError, import_org, unit_by_code

GOOD = """\
units:
  - {code: D1, kind: district, name: 示范区}
  - {code: S1, kind: street, name: 和平街道, parent: D1}
  - {code: C1, kind: community, name: 新德社区, parent: S1}
  - {code: G1, kind: grid, name: 第一网格, parent: C1, lat: 31.23, lon: 121.47}
  - {code: B1, kind: building, name: 1号楼, parent: G1}
"""


async def count_units(db: Database) -> int:
    async with db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(Unit))).scalar_one()


async def test_import_builds_the_tree_and_is_idempotent(db: Database) -> None:
    async with db.transaction() as session:
        first = await import_org(session, GOOD)
    assert first.created == ["D1", "S1", "C1", "G1", "B1"]
    async with db.transaction() as session:
        second = await import_org(session, GOOD)
        b1, g1 = await unit_by_code(session, "B1"), await unit_by_code(session, "G1")
    assert second.created == []
    assert second.updated == []
    assert len(second.unchanged) == 5
    assert b1.within(g1)
    assert b1.path.count("/") == 6


async def test_children_may_come_before_parents_and_names_update(db: Database) -> None:
    reordered = "units:\n" + "\n".join(reversed(GOOD.splitlines()[1:]))
    async with db.transaction() as session:
        await import_org(session, reordered)
    async with db.transaction() as session:
        report = await import_org(session, GOOD.replace("第一网格", "新德第一网格"))
        grid = await unit_by_code(session, "G1")
    assert report.updated == ["G1"]
    assert grid.name == "新德第一网格"


BAD = """\
units:
  - {code: D1, kind: district, name: 示范区}
  - {code: S1, kind: street, name: 和平街道, parent: D9}
  - {code: C1, kind: village, name: 某村, parent: S1}
  - {code: "bad code!", kind: grid, name: X, parent: C1}
  - {code: G1, kind: grid, name: 第一网格, parent: D1}
  - {code: D1, kind: district, name: 重复}
  - {code: G2, kind: grid, name: "", parent: C1}
  - {code: G3, kind: grid, name: 三, parent: C1, lat: 95, lon: 10}
"""


async def test_every_bad_row_is_reported_with_its_line_and_nothing_is_loaded(
    db: Database,
) -> None:
    async with db.transaction() as session:
        with pytest.raises(OrgImportError) as failed:
            await import_org(session, BAD)
    problems = [str(p) for p in failed.value.report.problems]
    assert problems == [
        "line 3: S1: unknown parent D9",
        "line 4: C1: kind must be one of district, street, community, grid, building",
        "line 5: code 'bad code!' must be 1-16 letters, digits, - or _",
        "line 6: G1: a grid cannot sit under a district (D1)",
        "line 7: D1: duplicate code (first on line 2)",
        "line 8: G2: name is required (at most 100 characters)",
        "line 9: G3: lat/lon must be given together and valid",
    ]
    assert await count_units(db) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("units: [", "line 1: not valid YAML"),
        ("units:\n  - {code: D1\n  - x", "line 3: not valid YAML"),
        ("- just a list", "line 1: expected a mapping with a 'units' list"),
        ("people: []", "line 1: expected a 'units' list"),
    ],
)
async def test_unreadable_files_are_refused(db: Database, text: str, message: str) -> None:
    async with db.transaction() as session:
        with pytest.raises(OrgImportError) as failed:
            await import_org(session, text)
    assert str(failed.value.report.problems[0]).startswith(message)


async def test_moving_a_unit_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        await import_org(session, GOOD + "  - {code: C2, kind: community, name: 二, parent: S1}\n")
    moved = GOOD + "  - {code: G9, kind: grid, name: 九, parent: C1}\n"
    moved = moved.replace(
        "{code: G1, kind: grid, name: 第一网格, parent: C1",
        "{code: G1, kind: grid, name: 第一网格, parent: C2",
    )
    moved += "  - {code: C2, kind: community, name: 二, parent: S1}\n"
    async with db.transaction() as session:
        with pytest.raises(OrgImportError) as failed:
            await import_org(session, moved)
    assert "moving units is not supported" in str(failed.value)
    async with db.transaction() as session:
        assert (await session.execute(select(Unit).where(Unit.code == "G9"))).first() is None
