"""What a daily report is: tables of JSON scalar cells and the headline figures, per viewer and UTC day.

Units: times are ISO 8601 UTC strings, durations seconds, distances and altitudes metres (altitudes above the
WGS84 ellipsoid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

Cell = str | int | float | bool | None
"""A table cell: JSON scalars only (times as ISO 8601 UTC strings)."""


@dataclass(frozen=True)
class Table:
    """One table of the report: a name (file stem), a title, its columns in order and its rows."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Cell]]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "note": self.note, "columns": list(self.columns), "rows": self.rows}


@dataclass(frozen=True)
class Report:
    """The daily report of one viewer (``party`` None: the operator's full report)."""

    day: date
    party: str | None
    parties: dict[str, str]
    summary: dict[str, Cell]
    tables: dict[str, Table]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: day, viewer, party names, headline figures and every table."""
        return {"day": self.day.isoformat(), "party": self.party, "view": "party" if self.party else "operator",
                "parties": self.parties, "summary": self.summary, "notes": self.notes,
                "tables": {name: t.to_json() for name, t in self.tables.items()}}
