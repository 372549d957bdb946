"""What party X may see of party Y's records: the one gate every read path goes through.

* The owner sees everything of its own operations.
* A party bound to the owner by at least one agreement sees the **safety envelope**: id, owner, activity
  class, state, version, volumes (footprint, altitudes, times), notification time, and the agreements'
  contact channels.
* Planning detail (purpose, unit, call signs, notes) is released field by field: only where an agreement
  binding both has ``sharing: planning_detail`` and lists the viewer under that field in ``released_fields``.
* A party bound by no agreement to the owner sees nothing (``None``).
"""

from __future__ import annotations

from typing import Any

from forewarn.airspace import AgreementBook
from forewarn.model import Operation, SharingLevel


def released_detail_fields(viewer: str, owner: str, book: AgreementBook) -> set[str]:
    """Planning-detail fields of ``owner``'s operations released to ``viewer``."""
    fields: set[str] = set()
    for agreement in book.binding(viewer, owner):
        if agreement.sharing == SharingLevel.PLANNING_DETAIL:
            fields |= {f for f, partners in agreement.released_fields.items() if viewer in partners}
    return fields


def can_see(viewer: str, owner: str, book: AgreementBook) -> bool:
    """Whether ``viewer`` may see anything of ``owner``'s operations."""
    return viewer == owner or bool(book.binding(viewer, owner))


ENVELOPE_FIELDS = ("id", "party_id", "activity_class", "state", "version", "volumes", "notified_at")
"""The operation fields of the safety envelope (plus the agreements' contact channels)."""


def view_operation(viewer: str, op: Operation, book: AgreementBook,
                   dump: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``op`` as ``viewer`` may see it (JSON-ready), or ``None`` when it may see nothing of it. ``dump`` may
    pass ``op.model_dump(mode="json")`` when many views of one operation are made."""
    full = dump if dump is not None else op.model_dump(mode="json")
    if viewer == op.party_id:
        return dict(full)
    agreements = book.binding(viewer, op.party_id)
    if not agreements:
        return None
    envelope = {k: full[k] for k in ENVELOPE_FIELDS}
    envelope["contact"] = [
        {"agreement_id": a.id, "primary": a.primary_channel.model_dump(),
         "backup": a.backup_channel.model_dump() if a.backup_channel else None}
        for a in agreements
    ]
    released = released_detail_fields(viewer, op.party_id, book)
    if released:
        envelope["detail"] = {k: v for k, v in full["detail"].items() if k in released}
    return envelope
