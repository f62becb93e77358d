"""The statistics report for a street of 10 communities at scale: 100,000 issues (with ~5 events
each), 50,000 households (with visits and cadence history), 1,000,000 ledger entries, plus
wishes, meetings and service hours, on SQLite or PostgreSQL.

The data is bulk-loaded with the database driver (sqlite3 executemany, asyncpg COPY) — the same
rows the services write, spread over 2026 — and its generation is **not** timed. Then it times

* the full report (``services.stats.build_report``: every figure, the 10 communities side by
  side and the street recomputed) for a month, a quarter and the whole year;
* the trend of the last 12 months and the department league table;
* the Excel export (``services.stats_export.build_export``: report, league and workbook), its
  time and its peak Python memory (tracemalloc, measured in a separate run, since tracing slows
  Python down) and the process's peak RSS,

each the median of a few rounds after an untimed warm-up, and prints seconds and the ratio to
the 3 s target.

Usage: .venv/bin/python bench/stats_report.py [--database sqlite|postgresql]
       [--issues 100000] [--households 50000] [--entries 1000000] [--keep NAME] [--sections]

``--keep NAME`` keeps the generated database (SQLite: ``$TMPDIR/NAME.sqlite3``; PostgreSQL: the
database ``NAME``) and reuses it on the next run with the same NAME — only migrations not yet
applied run (e.g. a new index) — so iterating on the report does not regenerate the data.
``--sections`` also times each section of the whole year's report (what to look at first).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg
from openpyxl import load_workbook
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from bot.db import Database
from bot.migrate import upgrade
from services import stats
from services.access import UnitRef
from services.stats_export import build_export

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
YEAR_START = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Shanghai
COMMUNITIES = 10
GRIDS = 5
BUILDINGS = 4
MEMBERS = 20_000
ROUNDS = 3
TARGET_SECONDS = 3.0
POLICY = stats.StatsPolicy()


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Enum):
        return value.value
    return value


class Loader:
    """Bulk rows through the raw driver. Rows are dicts; NOT NULL columns left out get the
    model's scalar default (or NOW for a default factory), as the ORM would write them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    def _columns(self, table: str, given: Iterable[str]) -> tuple[list[str], dict[str, Any]]:
        defaults: dict[str, Any] = {}
        for column in SQLModel.metadata.tables[table].columns:
            if column.nullable or column.name in given or column.default is None:
                continue
            arg = column.default.arg  # type: ignore[attr-defined]
            value = NOW if callable(arg) else arg
            defaults[column.name] = value.value if isinstance(value, Enum) else value
        return [*given, *defaults], defaults

    async def rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns, defaults = self._columns(table, list(rows[0]))
        records = [tuple({**defaults, **row}[c] for c in columns) for row in rows]
        if self.sqlite:
            connection = sqlite3.connect(self.url.split(":///", 1)[1])
            try:
                marks = ", ".join("?" for _ in columns)
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(_sqlite(v) for v in record) for record in records],
                )
                connection.commit()
            finally:
                connection.close()
            return
        connection = await asyncpg.connect(self.url)
        try:
            await connection.copy_records_to_table(table, records=records, columns=columns)
        finally:
            await connection.close()

    async def batches(self, table: str, rows: Iterable[dict[str, Any]], size: int = 50_000) -> int:
        batch: list[dict[str, Any]] = []
        count = 0
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                await self.rows(table, batch)
                count += len(batch)
                batch = []
        await self.rows(table, batch)
        return count + len(batch)

    async def finish(self, tables: Iterable[str]) -> None:
        """PostgreSQL: move the id sequences past the loaded ids, and ANALYZE."""
        if self.sqlite:
            connection = sqlite3.connect(self.url.split(":///", 1)[1])
            try:
                connection.execute("ANALYZE")
            finally:
                connection.close()
            return
        connection = await asyncpg.connect(self.url)
        try:
            for table in tables:
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            await connection.execute("ANALYZE")
        finally:
            await connection.close()


def moment(r: random.Random) -> datetime:
    return YEAR_START + timedelta(seconds=r.uniform(0, (NOW - YEAR_START).total_seconds() - 86400))


async def generate(url: str, issues: int, households: int, entries: int) -> dict[str, int]:
    """The street S0 with 10 communities of 5 grids of 4 buildings, and everything in them."""
    await asyncio.to_thread(upgrade, url)
    load = Loader(url)
    r = random.Random(8)
    units: list[dict[str, Any]] = [
        {"id": 1, "code": "D0", "kind": "district", "name": "区", "parent_id": None, "path": "/1/"},
        {"id": 2, "code": "S0", "kind": "street", "name": "街道", "parent_id": 1, "path": "/1/2/"},
    ]
    communities, grids, buildings = [], [], []
    next_id = 3
    for c in range(COMMUNITIES):
        cid = next_id
        next_id += 1
        communities.append(cid)
        units.append({"id": cid, "code": f"C{c}", "kind": "community", "name": f"社区{c}",
                      "parent_id": 2, "path": f"/1/2/{cid}/"})  # fmt: skip
        for g in range(GRIDS):
            gid = next_id
            next_id += 1
            grids.append((gid, cid))
            units.append({"id": gid, "code": f"C{c}G{g}", "kind": "grid", "name": f"网格{c}-{g}",
                          "parent_id": cid, "path": f"/1/2/{cid}/{gid}/"})  # fmt: skip
            for b in range(BUILDINGS):
                bid = next_id
                next_id += 1
                buildings.append((bid, gid, cid))
                units.append({"id": bid, "code": f"C{c}G{g}B{b}", "kind": "building",
                              "name": f"楼{c}-{g}-{b}", "parent_id": gid,
                              "path": f"/1/2/{cid}/{gid}/{bid}/"})  # fmt: skip
    await load.rows("units", units)
    await load.rows("members", [
        {"id": i, "telegram_id": 10_000_000 + i, "chat_id": 10_000_000 + i,
         "display_name": f"成员{i}", "locale": "zh_CN"} for i in range(1, MEMBERS + 1)
    ])  # fmt: skip
    departments = list(range(1, 21))
    grants = [{"id": i, "member_id": i, "role": "department", "unit_id": 2} for i in departments]
    home: dict[int, tuple[int, int]] = {}
    for i in range(21, MEMBERS + 1):
        gid, cid = grids[i % len(grids)]
        home[i] = (gid, cid)
        grants.append({"id": i, "member_id": i, "role": "volunteer", "unit_id": gid})
    await load.rows("role_grants", grants)
    await load.rows("issue_categories", [{"id": 1000, "code": "bench", "name": "压测"}])

    def issue_rows() -> Iterable[dict[str, Any]]:
        for i in range(1, issues + 1):
            gid, cid = grids[r.randrange(len(grids))]
            created = moment(r)
            roll = r.random()
            status = "closed" if roll < 0.6 else "resolved" if roll < 0.75 else \
                "rejected" if roll < 0.78 else "accepted" if roll < 0.9 else "new"  # fmt: skip
            department = departments[r.randrange(20)] if r.random() < 0.05 else None
            yield {
                "id": i, "number": f"B-{i}", "community_id": cid, "grid_id": gid,
                "category_id": 1000, "status": status, "description": "d",
                "due_at": created + timedelta(hours=72) if status in ("new", "accepted") else None,
                "resolved_at": created + timedelta(hours=r.uniform(2, 100))
                if status in ("closed", "resolved") else None,
                "department_id": department,
                "reported_in_at": created + timedelta(hours=1) if department else None,
                "created_at": created, "updated_at": created,
            }  # fmt: skip

    issue_list = list(issue_rows())
    await load.batches("issues", issue_list)

    def event_rows() -> Iterable[dict[str, Any]]:
        event_id = 0
        for issue in issue_list:
            created = issue["created_at"]
            events: list[tuple[str, float, str | None]] = [("reported", 0.0, None)]
            if issue["status"] != "new":
                if r.random() < 0.1:
                    events.append(("escalated", 0.2, "response"))
                events.append(("rejected" if issue["status"] == "rejected" else "accepted",
                               r.uniform(0.05, 2), None))  # fmt: skip
            if issue["resolved_at"] is not None:
                hours = (issue["resolved_at"] - created).total_seconds() / 3600
                if hours > 72:
                    events.append(("escalated", 72.0, "handling"))
                if r.random() < 0.05:
                    half = hours / 2
                    events += [("resolved", half, None), ("rated", half + 1, "unsatisfied"),
                               ("reopened", half + 1, None)]  # fmt: skip
                events.append(("resolved", hours, None))
                if issue["status"] == "closed":
                    if r.random() < 0.8:
                        events.append(("rated", hours + 2, r.choice(["satisfied", "basic"])))
                        events.append(("closed", hours + 2, None))
                    else:
                        events.append(("closed", hours + 168, "no_answer"))
            for kind, hours, note in events:
                event_id += 1
                yield {"id": event_id, "issue_id": issue["id"], "kind": kind,
                       "at": created + timedelta(hours=hours), "note": note}  # fmt: skip

    counts = {"issues": issues, "issue_events": await load.batches("issue_events", event_rows())}

    wishes = issues // 10
    wish_rows: list[dict[str, Any]] = []
    wish_events: list[dict[str, Any]] = []
    for i in range(1, wishes + 1):
        bid, gid, cid = buildings[r.randrange(len(buildings))]
        created = moment(r)
        steps = ["submit", "approve", "claim", "fulfil", "confirm"][: r.randrange(1, 6)]
        status = {"submit": "submitted", "approve": "approved", "claim": "claimed",
                  "fulfil": "fulfilled", "confirm": "confirmed"}[steps[-1]]  # fmt: skip
        wish_rows.append({"id": i, "status": status, "category": "other", "text": "w",
                          "unit_id": bid, "grid_id": gid, "community_id": cid,
                          "created_at": created, "updated_at": created})  # fmt: skip
        for day, action in enumerate(steps):
            at = created + timedelta(days=day)
            wish_events.append({"id": len(wish_events) + 1, "wish_id": i, "action": action,
                                "to_status": status, "at": at})  # fmt: skip
    await load.batches("wishes", wish_rows)
    counts["wishes"] = wishes
    counts["wish_events"] = await load.batches("wish_events", wish_events)

    await load.rows("household_tags", [
        {"id": 1001, "code": "b_special", "name": "压测特需", "interval_days": 7},
        {"id": 1002, "code": "b_elderly", "name": "压测独居", "interval_days": 14},
        {"id": 1003, "code": "b_income", "name": "压测低保", "interval_days": 30},
    ])  # fmt: skip
    household_rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    intervals: list[dict[str, Any]] = []
    for i in range(1, households + 1):
        bid, gid, _ = buildings[i % len(buildings)]
        tag = r.choice([None, None, 1001, 1002, 1003])
        interval = {None: 90, 1001: 7, 1002: 14, 1003: 30}[tag]
        household_rows.append({"id": i, "building_id": bid, "grid_id": gid,
                               "address_key": f"h{i}", "interval_days": interval,
                               "due_at": NOW, "created_at": YEAR_START})  # fmt: skip
        # One household in ten was tagged later in the year: 90 days until then.
        history = [(YEAR_START, 90), (moment(r), interval)] if tag and i % 10 == 0 else []
        for valid_from, days in history or [(YEAR_START, interval)]:
            intervals.append({"id": len(intervals) + 1, "household_id": i,
                              "interval_days": days, "valid_from": valid_from})  # fmt: skip
        if tag:
            links.append({"household_id": i, "tag_id": tag})
        for _ in range(3):
            visits.append({"id": len(visits) + 1, "household_id": i, "visited_at": moment(r),
                           "outcome": r.choice(["met", "met", "not_home", "refused"])})  # fmt: skip
    await load.batches("households", household_rows)
    await load.batches("household_tag_links", links)
    counts["households"] = households
    counts["household_intervals"] = await load.batches("household_intervals", intervals)
    counts["visits"] = await load.batches("visits", visits)

    series: list[dict[str, Any]] = []
    meetings: list[dict[str, Any]] = []
    attendance: list[dict[str, Any]] = []
    for cid in communities:
        for s in range(10):
            sid = len(series) + 1
            series.append({"id": sid, "kind": "council", "title": "月月谈", "unit_id": cid,
                           "audience": "roles", "roles": json.dumps(["volunteer"]), "venue": "v",
                           "radius_m": 300, "first_start": YEAR_START,
                           "duration_minutes": 90})  # fmt: skip
            for month in range(11):
                mid = len(meetings) + 1
                starts = YEAR_START + timedelta(days=30 * month + s + 1)
                meetings.append({"id": mid, "series_id": sid, "original_start": starts,
                                 "starts_at": starts, "ends_at": starts + timedelta(hours=1),
                                 "checkin_code": f"m{mid}", "invited_count": 30})  # fmt: skip
                for k in range(r.randrange(10, 30)):
                    attendance.append({"id": len(attendance) + 1, "meeting_id": mid,
                                       "member_id": 21 + (mid * 31 + k) % (MEMBERS - 21),
                                       "method": "code", "checked_in_at": starts})  # fmt: skip
    await load.rows("meeting_series", series)
    await load.batches("meetings", meetings)
    counts["meetings"] = len(meetings)
    counts["meeting_attendance"] = await load.batches("meeting_attendance", attendance)

    def ledger_rows() -> Iterable[dict[str, Any]]:
        for i in range(1, entries + 1):
            member = r.randrange(21, MEMBERS + 1)
            gid, cid = home[member]
            redeem = r.random() < 0.05
            points = -20 if redeem else r.choice([2, 3, 5, 10])
            yield {"id": i, "member_id": member, "points": points,
                   "kind": "redemption" if redeem else "award",
                   "source": "store" if redeem else "visit", "at": moment(r),
                   "community_id": cid, "grid_id": gid, "dedupe_key": f"b:{i}"}  # fmt: skip

    counts["points_ledger"] = await load.batches("points_ledger", ledger_rows())

    def hour_rows() -> Iterable[dict[str, Any]]:
        for i in range(1, entries // 10 + 1):
            member = r.randrange(21, MEMBERS + 1)
            yield {"id": i, "member_id": member, "minutes": r.choice([30, 60, 120]),
                   "source": "task", "at": moment(r), "dedupe_key": f"h:{i}"}  # fmt: skip

    counts["service_hours"] = await load.batches("service_hours", hour_rows())
    await load.finish(
        ["units", "members", "role_grants", "issues", "issue_events", "wishes", "wish_events",
         "households", "household_intervals", "visits", "meeting_series", "meetings",
         "meeting_attendance", "points_ledger", "service_hours"]
    )  # fmt: skip
    return counts


async def timed(work: Callable[[], Awaitable[Any]], rounds: int = ROUNDS) -> tuple[float, Any]:
    result = await work()  # warm-up, untimed
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def measure(url: str, name: str, *, sections: bool = False) -> None:
    db = Database(url)
    try:
        async with db.reading() as session:
            street = await stats.unit_by_code(session, "S0")
        if sections:
            await time_sections(db, street, name)
        for period_key in ("2026-10", "2026-Q4", "2026"):
            period = stats.parse_period(period_key)

            async def report(period: stats.Period = period) -> stats.Report:
                async with db.reading() as session:
                    return await stats.build_report(
                        session, street, period, NOW, POLICY, reading=db.reading
                    )

            seconds, result = await timed(report)
            print(
                f"{name}: full report, street of {len(result.rows)} communities, {period_key}: "
                f"{seconds:.2f} s ({seconds / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s "
                f"target; {result.total['issues_reported']:,} issues in the period)"
            )
        month = stats.parse_period("2026-10")

        async def trend() -> list[stats.TrendPoint]:
            async with db.reading() as session:
                return await stats.trend(session, street, month, NOW, POLICY)

        async def league() -> list[stats.LeagueRow]:
            async with db.reading() as session:
                return await stats.league(session, street, stats.parse_period("2026"), POLICY)

        seconds, _ = await timed(trend)
        print(f"{name}: trend of 12 months: {seconds:.2f} s")
        seconds, table = await timed(league)
        print(f"{name}: department league table, 2026 ({len(table)} departments): {seconds:.2f} s")

        year = stats.parse_period("2026")

        async def export() -> bytes:
            async with db.reading() as session:
                return await build_export(
                    session, street, year, NOW, POLICY, "zh_CN", reading=db.reading
                )

        seconds, data = await timed(export)
        sheets = load_workbook(io.BytesIO(data), read_only=True).sheetnames
        tracemalloc.start()
        await export()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name}: Excel export, 2026 ({len(sheets)} sheets, {len(data):,} bytes): "
            f"{seconds:.2f} s; peak Python memory {peak / 2**20:.1f} MiB (tracemalloc); "
            f"process peak RSS {rss:.0f} MiB (includes the data generation)"
        )
    finally:
        await db.dispose()


async def time_sections(db: Database, street: UnitRef, name: str) -> None:
    """The whole year's report, with the time between its progress steps (one per section,
    in the order ``build_report`` reports them), after a warm-up run. The sections run one
    after the other here (no ``reading``), so that each step is one section's time."""
    year = stats.parse_period("2026")
    for run in ("warm-up", "timed"):
        marks: list[float] = []

        async def progress(step: int, steps: int, marks: list[float] = marks) -> None:
            marks.append(time.perf_counter())

        started = time.perf_counter()
        async with db.reading() as session:
            await stats.build_report(session, street, year, NOW, POLICY, progress=progress)
        ended = time.perf_counter()
        if run == "timed":
            steps = [b - a for a, b in zip([started, *marks], [*marks, ended], strict=True)]
            print(
                f"{name}: year by section: "
                + ", ".join(f"{n} {s:.2f} s" for n, s in zip(SECTION_NAMES, steps, strict=False))
                + f"; total {ended - started:.2f} s"
            )


SECTION_NAMES = ("issues", "overdue", "wishes", "visits", "meetings", "members", "points", "rest")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="NAME", help="keep the data and reuse it next time")
    parser.add_argument("--sections", action="store_true", help="time each section (year)")
    args = parser.parse_args()

    name = args.keep or f"gridbot_stats_bench_{os.getpid()}"
    reuse = False
    if args.database == "sqlite":
        scratch = tempfile.gettempdir() if args.keep else tempfile.mkdtemp(prefix="stats-bench-")
        url = f"sqlite:///{scratch}/{name}.sqlite3"
        reuse = bool(args.keep) and Path(url.split(":///", 1)[1]).exists()
    else:
        admin = await asyncpg.connect(args.postgres_url)
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        reuse = bool(args.keep) and bool(exists)
        if not reuse:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = args.postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        if reuse:
            await asyncio.to_thread(upgrade, url)
            await Loader(url).finish([])
            print(f"{args.database}: reusing the data kept as {name!r} (migrated to head)")
        else:
            started = time.perf_counter()
            counts = await generate(url, args.issues, args.households, args.entries)
            print(
                f"{args.database}: generated (not timed) in {time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{table} {n:,}" for table, n in counts.items())
            )
        await measure(url, args.database, sections=args.sections)
    finally:
        if args.keep:
            pass
        elif args.database == "postgresql":
            admin = await asyncpg.connect(args.postgres_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        else:
            path = Path(url.split(":///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
