"""Records of what happened: notices and their outcomes (conflicts, warnings, resolutions, who is affected)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from forewarn.core.conflicts import Conflict
from forewarn.core.resolutions import ResolutionSet
from forewarn.core.sites import SiteWarning

NoticeKind = Literal["notify", "amend", "cancel", "activate", "complete"]


class PartyImpact(BaseModel):
    """What a notice means for one other party bound by an agreement."""

    model_config = ConfigDict(frozen=True)

    party_id: str
    affected: bool
    conflicts: int
    asked_to_adjust: list[str]
    message: str


def impact_of(party: str, filed_id: str, mine: list[Conflict], sites: int, where: str = "") -> PartyImpact:
    """What a notice of ``filed_id`` means for ``party`` given its conflicts ``mine`` (``party`` on side ``b``)
    and the number of warnings on its sites; ``where`` says against what the conflicts were found (e.g. " with
    its coarsened envelope"), empty for the exact volumes."""
    adjust = sorted({c.adjusting_operation for c in mine if c.adjusting_operation != filed_id})
    if not mine:
        message = "not affected: no adjustment needed"
    elif adjust:
        message = f"affected: {len(mine)} conflict(s){where}; asked to adjust {', '.join(adjust)}"
    else:
        message = f"affected: {len(mine)} conflict(s){where}; {filed_id} is asked to adjust, no adjustment needed here"
    if sites:
        message = f"{sites} protected-site warning(s) on its registered sites; " + (
            "no airspace conflict" if not mine else message)
    return PartyImpact(party_id=party, affected=bool(mine) or bool(sites), conflicts=len(mine),
                       asked_to_adjust=adjust, message=message)


class LeadTime(BaseModel):
    """Lead time of a notice against one agreement's minimum notice (seconds)."""

    model_config = ConfigDict(frozen=True)

    agreement_id: str
    lead_time_s: float
    min_notice_s: float
    late: bool


class NoticeOutcome(BaseModel):
    """Everything a notice (or a what-if check, with ``notice_id`` None) found."""

    model_config = ConfigDict(frozen=True)

    notice_id: int | None
    kind: NoticeKind | Literal["check"]
    operation_id: str
    version: int
    party_id: str
    activity_class: str
    at: datetime
    lead_times: list[LeadTime]
    conflicts: list[Conflict]
    site_warnings: list[SiteWarning]
    resolutions: list[ResolutionSet]
    impacts: list[PartyImpact]

    @property
    def late(self) -> bool:
        """Whether the notice came later than any applicable agreement's minimum notice."""
        return any(lt.late for lt in self.lead_times)


class Delivery(BaseModel):
    """One notice or warning sent to one party over one channel, with its times (UTC) and state.

    ``seq`` orders a party's deliveries (it is the server-sent event id); ``id`` is stable across retries so a
    receiver can de-duplicate. Acknowledgement means "received and understood", never approval.
    """

    id: str
    seq: int = 0
    notice_id: int | None
    party_id: str
    channel: Literal["primary", "backup"] = "primary"
    reason: Literal["agreement", "subscription", "own", "escalation", "site", "alert"]
    escalation_of: str | None = None
    payload: dict[str, Any]
    created_at: datetime
    first_sent_at: datetime | None = None
    delivered_at: datetime | None = None
    acked_at: datetime | None = None
    ack_deadline: datetime | None = None
    escalated_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    lead_time_s: float | None = None
    min_notice_s: float | None = None
    late: bool = False
