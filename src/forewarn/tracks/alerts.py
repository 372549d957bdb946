"""Alerts raised by following live tracks, and what each party is told of them.

Kinds:

* ``nonconforming`` — a track of an active operation left every volume of its operation (beyond the tolerance);
  ``conforming`` — it is back inside (clears the ``nonconforming`` alert).
* ``intrusion`` — a track is inside another party's notified volume.
* ``predicted_conflict`` — two tracks of different parties are predicted to lose separation within the look-ahead
  (``time_to_los_s``, ``time_to_cpa_s``, ``min_distance_m`` and ``vertical_at_cpa_m`` given).
* ``predicted_entry`` — a track is predicted to enter another party's notified volume (``time_to_entry_s``).
* ``cleared`` — an ``intrusion``, ``predicted_conflict`` or ``predicted_entry`` encounter is over (``clears`` names
  the alert it ends).

Each alert is raised once per encounter (the open encounter is stored) and cleared once. ``at`` is the time (UTC)
of the position that raised it; distances in metres, times in seconds, positions WGS84 degrees / metres.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from forewarn.core.airspace import AgreementBook
from forewarn.core.policy import can_see

AlertKind = Literal["nonconforming", "conforming", "intrusion", "predicted_conflict", "predicted_entry", "cleared"]
OPENING_KINDS: frozenset[str] = frozenset({"nonconforming", "intrusion", "predicted_conflict", "predicted_entry"})


class TrackAlert(BaseModel):
    """One alert (see module docstring for the kinds, units and times)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: AlertKind
    encounter: str
    """Stable key of the encounter (e.g. ``conflict:coalition/abc|russia/def``); one open alert per encounter."""
    at: datetime
    party_id: str
    track_id: str
    operation_id: str | None = None
    other_party_id: str | None = None
    other_track_id: str | None = None
    other_operation_id: str | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    alt_m: float | None = None
    time_to_los_s: float | None = None
    time_to_cpa_s: float | None = None
    min_distance_m: float | None = None
    vertical_at_cpa_m: float | None = None
    time_to_entry_s: float | None = None
    clears: str | None = None
    notify: tuple[str, ...] = ()
    """Further parties told (beyond the track's owner and the other party), e.g. those a nonconforming track
    endangers."""
    message: str


def recipients(alert: TrackAlert, book: AgreementBook) -> list[str]:
    """Who is told of ``alert``: its track's owner always; the other party and every further endangered party only
    when an agreement binds it to the owner (a party with no agreement is told nothing, and nothing of it is told)."""
    out = [alert.party_id]
    for party in (alert.other_party_id, *alert.notify):
        if party and party not in out and can_see(party, alert.party_id, book):
            out.append(party)
    return out


def _message(alert: TrackAlert) -> str:
    """The alert's message as every recipient may read it. A nonconforming alert goes to the track's owner and to
    each endangered party bound to it, but the endangered parties need not be bound to each other: the message
    does not name them (``notify`` is never shown either)."""
    if alert.kind == "nonconforming" and alert.notify:
        return (f"track {alert.track_id} left every volume of operation {alert.operation_id}; near notified "
                f"volumes of other parties (each of them is told)")
    return alert.message


def alert_payload(alert: TrackAlert) -> dict[str, Any]:
    """The delivery payload of an alert (the same for every recipient: an alert carries only safety information —
    positions, times, distances and the ids of the track, the owner and the other side — which every recipient
    may see; the further endangered parties are not named, see :func:`_message`)."""
    shown = alert.model_dump(mode="json", exclude={"notify"}) | {"message": _message(alert)}
    return {"type": "alert", "alert": shown}


def view_alert(viewer: str, alert: TrackAlert, book: AgreementBook) -> dict[str, Any] | None:
    """``alert`` as ``viewer`` may see it (the alert of its delivery payload), or ``None`` when ``viewer`` is not
    one of its :func:`recipients` (e.g. an alert about other parties' tracks raised while ``viewer`` fed)."""
    if viewer not in recipients(alert, book):
        return None
    shown: dict[str, Any] = alert_payload(alert)["alert"]
    return shown
