"""The org tree: look-ups and the idempotent YAML import."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.org import Unit, UnitKind
from services.access import UnitRef
from services.errors import NotFound

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def within(paths: Iterable[str]) -> ColumnElement[bool]:
    """SQL condition: the unit lies in one of the subtrees rooted at ``paths``."""
    return or_(*(col(Unit.path).startswith(path) for path in paths))


async def unit_by_code(session: AsyncSession, code: str) -> UnitRef:
    unit = (
        await session.execute(select(Unit).where(Unit.code == code.strip()))
    ).scalar_one_or_none()
    if unit is None:
        raise NotFound("org.unit_unknown", code=code[:32])
    return UnitRef.of(unit)


async def unit_by_id(session: AsyncSession, unit_id: int) -> UnitRef:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("org.unit_unknown", code=str(unit_id))
    return UnitRef.of(unit)


async def subtree(
    session: AsyncSession, root: UnitRef, kinds: set[UnitKind] | None = None
) -> list[UnitRef]:
    """The unit and everything below it, in tree order (by path, then code)."""
    query = select(Unit).where(col(Unit.path).startswith(root.path))
    if kinds:
        query = query.where(col(Unit.kind).in_([k.value for k in kinds]))
    rows = (await session.execute(query.order_by(col(Unit.path), col(Unit.code)))).scalars()
    return sorted((UnitRef.of(u) for u in rows), key=lambda u: (u.path.count("/"), u.code))


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class ImportProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Row:
    line: int
    code: str
    kind: UnitKind
    name: str
    parent: str | None
    name_en: str | None
    latitude: float | None
    longitude: float | None


class OrgImportError(Exception):
    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__("; ".join(str(p) for p in report.problems))


_ALLOWED_KEYS = {"code", "kind", "name", "name_en", "parent", "lat", "lon", "latitude", "longitude"}


def _scalar(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node)) if node is not None else None


def parse_org_yaml(text: str) -> tuple[list[_Row], list[ImportProblem]]:
    """Parse ``units: [...]`` keeping each row's line number for the report."""
    problems: list[ImportProblem] = []
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return [], [ImportProblem(line, f"not valid YAML ({getattr(exc, 'problem', exc)})")]
    if not isinstance(root, yaml.MappingNode):
        return [], [ImportProblem(1, "expected a mapping with a 'units' list")]
    units_node = next((v for k, v in root.value if _scalar(k) == "units"), None)
    if not isinstance(units_node, yaml.SequenceNode):
        return [], [ImportProblem(root.start_mark.line + 1, "expected a 'units' list")]

    rows: list[_Row] = []
    for item in units_node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            problems.append(ImportProblem(line, "each unit must be a mapping"))
            continue
        data = {str(_scalar(k)): _scalar(v) for k, v in item.value}
        unknown = sorted(set(data) - _ALLOWED_KEYS)
        if unknown:
            problems.append(ImportProblem(line, f"unknown field(s): {', '.join(unknown)}"))
            continue
        code = str(data.get("code") or "").strip()
        if not CODE_PATTERN.match(code):
            problems.append(
                ImportProblem(line, f"code {code!r} must be 1-16 letters, digits, - or _")
            )
            continue
        try:
            kind = UnitKind(str(data.get("kind") or "").strip())
        except ValueError:
            kinds = ", ".join(k.value for k in UnitKind)
            problems.append(ImportProblem(line, f"{code}: kind must be one of {kinds}"))
            continue
        name = str(data.get("name") or "").strip()
        if not 1 <= len(name) <= 100:
            problems.append(
                ImportProblem(line, f"{code}: name is required (at most 100 characters)")
            )
            continue
        name_en = str(data["name_en"]).strip() if data.get("name_en") else None
        if name_en is not None and len(name_en) > 100:
            problems.append(ImportProblem(line, f"{code}: name_en is longer than 100 characters"))
            continue
        parent = str(data["parent"]).strip() if data.get("parent") is not None else None
        lat = data.get("lat", data.get("latitude"))
        lon = data.get("lon", data.get("longitude"))
        try:
            latitude = float(lat) if lat is not None else None
            longitude = float(lon) if lon is not None else None
        except (TypeError, ValueError):
            problems.append(ImportProblem(line, f"{code}: lat/lon must be numbers"))
            continue
        if (latitude is None) != (longitude is None) or (
            latitude is not None and not (-90 <= latitude <= 90 and -180 <= (longitude or 0) <= 180)
        ):
            problems.append(
                ImportProblem(line, f"{code}: lat/lon must be given together and valid")
            )
            continue
        rows.append(_Row(line, code, kind, name, parent, name_en, latitude, longitude))
    return rows, problems


async def import_org(session: AsyncSession, text: str) -> ImportReport:
    """Create or update units from YAML. Idempotent; on any problem nothing is written and
    :class:`OrgImportError` carries the report with every bad row's line."""
    rows, problems = parse_org_yaml(text)
    report = ImportReport(problems=problems)

    seen: dict[str, _Row] = {}
    for row in rows:
        if row.code in seen:
            report.problems.append(
                ImportProblem(
                    row.line, f"{row.code}: duplicate code (first on line {seen[row.code].line})"
                )
            )
        else:
            seen[row.code] = row

    existing = {u.code: u for u in (await session.execute(select(Unit))).scalars()}
    by_id = {u.id: u for u in existing.values()}

    def kind_of(code: str) -> UnitKind | None:
        if code in seen:
            return seen[code].kind
        return UnitKind(existing[code].kind) if code in existing else None

    for row in seen.values():
        if row.parent is None:
            if row.kind != UnitKind.district:
                report.problems.append(
                    ImportProblem(row.line, f"{row.code}: a {row.kind} needs a parent")
                )
            continue
        parent_kind = kind_of(row.parent)
        if parent_kind is None:
            report.problems.append(
                ImportProblem(row.line, f"{row.code}: unknown parent {row.parent}")
            )
        elif parent_kind.level + 1 != row.kind.level:
            report.problems.append(
                ImportProblem(
                    row.line,
                    f"{row.code}: a {row.kind} cannot sit under a {parent_kind} ({row.parent})",
                )
            )
        current = existing.get(row.code)
        if current is not None:
            old_parent = by_id[current.parent_id].code if current.parent_id in by_id else None
            if old_parent != row.parent:
                report.problems.append(
                    ImportProblem(
                        row.line,
                        f"{row.code}: already under {old_parent}; moving units is not supported",
                    )
                )
            if current.kind != row.kind:
                report.problems.append(
                    ImportProblem(row.line, f"{row.code}: already exists as a {current.kind}")
                )

    if report.problems:
        report.problems.sort(key=lambda p: p.line)
        raise OrgImportError(report)

    for row in sorted(seen.values(), key=lambda r: r.kind.level):
        unit = existing.get(row.code)
        fields = {
            "name": row.name,
            "name_en": row.name_en,
            "latitude": row.latitude,
            "longitude": row.longitude,
        }
        if unit is None:
            parent = existing.get(row.parent) if row.parent else None
            unit = Unit(
                code=row.code,
                kind=row.kind,
                parent_id=parent.id if parent else None,
                name=row.name,
                name_en=row.name_en,
                latitude=row.latitude,
                longitude=row.longitude,
            )
            session.add(unit)
            await session.flush()
            unit.path = f"{parent.path if parent else '/'}{unit.id}/"
            existing[row.code] = unit
            report.created.append(row.code)
        elif any(getattr(unit, k) != v for k, v in fields.items()):
            for key, value in fields.items():
                setattr(unit, key, value)
            report.updated.append(row.code)
        else:
            report.unchanged.append(row.code)
    await session.flush()
    return report
