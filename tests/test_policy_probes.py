"""Property: probes learn nothing finer than the coarsened view (issue 20: protected-site warnings pinned a
coarsened strike area's edges to ~200 m with 20 probe sites).

Two worlds differ only in the exact volume of one strike-area operation of ``own``; both volumes have the same
coarsened view for ``obs`` (one 30' grid cell, 1,000 ft altitude steps, quarter hours). In each world ``obs``
holds the same probes — protected sites (some right at either exact footprint), subscriptions, operations filed
before and after — and every answer ``obs`` gets must be the same in both worlds: its deliveries as read from the
inbox (payload, reason, lead time), the situation export, and the outcome of its own later filing. Before the fix
the site warnings, the affected flag, the conflicts, the subscription match and the lead time were decided on the
exact volume and differed.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.core.model import Agreement, Coarsening, Party, ProtectedSite, SeparationMinima, Subscription
from forewarn.core.policy import envelope_volumes, view_delivery, view_outcome
from forewarn.geo.volume import Volume4D
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.situation import situation
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)
CELL = (38.0, 35.0)  # south-west corner of the 30' cell both exact footprints lie in
GRID = 0.5
FT1000 = 304.8


@st.composite
def exact_volumes(draw: st.DrawFn) -> Volume4D:
    """A circle well inside the cell (radius <= 5 km, centre >= 0.12 deg from its edges), its band inside
    [10,000 ft, 20,000 ft] within one step at each end and its window within one quarter hour
    after T0 + 1 h and before T0 + 3 h: the coarsened view is always the same."""
    lon = CELL[0] + draw(st.floats(0.12, GRID - 0.12))
    lat = CELL[1] + draw(st.floats(0.12, GRID - 0.12))
    radius = draw(st.floats(1000, 5000))
    lower = 10 * FT1000 + draw(st.floats(1, 300))
    upper = 20 * FT1000 - draw(st.floats(1, 300))
    start_h = 1 + draw(st.floats(0.01, 0.24))
    end_h = 3 - draw(st.floats(0.01, 0.24))
    return circle(lon, lat, radius_m=radius, lower=lower, upper=upper, start_h=start_h, end_h=end_h)


def near(draw: st.DrawFn, anchors: list[tuple[float, float]]) -> tuple[float, float]:
    """A probe point: right at (within ~1 km of) one of ``anchors``, or anywhere around the cell."""
    if draw(st.booleans()):
        x, y = draw(st.sampled_from(anchors))
        return x + draw(st.floats(-0.01, 0.01)), y + draw(st.floats(-0.01, 0.01))
    return CELL[0] + draw(st.floats(-0.2, GRID + 0.2)), CELL[1] + draw(st.floats(-0.2, GRID + 0.2))


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    pair = [draw(exact_volumes()), draw(exact_volumes())]
    anchors = [(v.footprint.center[0], v.footprint.center[1]) for v in pair]  # type: ignore[union-attr]
    sites = [(near(draw, anchors), draw(st.sampled_from([100.0, 1500.0, 6000.0])))
             for _ in range(draw(st.integers(1, 8)))]
    subs = [near(draw, anchors) for _ in range(draw(st.integers(0, 4)))]
    probes = [near(draw, anchors) for _ in range(draw(st.integers(0, 3)))]
    after = near(draw, anchors)
    return {"pair": pair, "sites": sites, "subs": subs, "probes": probes, "after": after,
            "deliver": draw(st.sampled_from(["all", "affected_or_subscribed"])),
            "h": draw(st.sampled_from([200.0, 5000.0]))}


def probe_volume(xy: tuple[float, float]) -> Volume4D:
    return circle(xy[0], xy[1], radius_m=800, lower=4000, upper=4500, start_h=2.0, end_h=2.2)


def observe(db: Path, world: dict[str, Any], exact: Volume4D) -> dict[str, Any]:
    """Build one world around ``exact`` and return everything ``obs`` is told."""
    svc = Forewarn(SQLiteRepository(db), Settings(db=db))
    for pid in ("own", "obs"):
        svc.put_party(Party(id=pid, name=pid.upper()))
    svc.put_agreement(Agreement(
        id="pact", name="pact", parties=["own", "obs"], deliver=world["deliver"],
        default_minima=SeparationMinima(horizontal_m=world["h"], vertical_m=300, time_s=600),
        coarsening=Coarsening(of=["own"], grid_arcmin=30, altitude_step_ft=1000, time_step_s=900)), NOW)
    for k, (xy, buffer_m) in enumerate(world["sites"]):
        svc.register_site(ProtectedSite(id=f"site-{k}", name=f"probe {k}", registered_by="obs", point=xy,
                                        buffer_m=buffer_m), NOW)
    with svc.repo.transaction():
        for k, xy in enumerate(world["subs"]):
            svc.repo.put_subscription(Subscription(id=f"sub-{k}", party_id="obs", volume=probe_volume(xy)))
    for k, xy in enumerate(world["probes"]):
        svc.notify(operation(f"obs-{k}", "obs", [probe_volume(xy)]), NOW)
    svc.notify(operation("own-strike", "own", [exact], cls="strike_area"), NOW + timedelta(seconds=1))
    after = operation("obs-after", "obs", [probe_volume(world["after"])])
    outcome = svc.notify(after, NOW + timedelta(seconds=2))
    book = svc.airspace.book
    stored = svc.repo.get_operation("obs-after")
    assert stored is not None
    shown = view_outcome("obs", outcome, stored, book, svc.airspace, svc.settings.resolution_bounds(),
                         svc.repo.get_operation)
    inbox = [v for d in svc.repo.list_deliveries("obs") if (v := view_delivery("obs", d, book)) is not None]
    own_strike = svc.repo.get_operation("own-strike")
    assert own_strike is not None
    told = {
        "view": [v.model_dump(mode="json") for v in envelope_volumes("obs", own_strike, book)],
        "inbox": [d.model_dump(mode="json", include={"reason", "payload", "lead_time_s", "late", "min_notice_s"})
                  for d in inbox],
        "situation": situation(svc.repo, viewer="obs", book=book),
        "after": shown.model_dump(mode="json"),
    }
    svc.repo.close()
    return told


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_no_probe_answer_differs_between_operations_with_the_same_coarsened_view(world: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = observe(Path(tmp) / "a.sqlite", world, world["pair"][0])
        second = observe(Path(tmp) / "b.sqlite", world, world["pair"][1])
    assert first["view"] == second["view"]  # the premise: the same coarsened view
    for what in ("inbox", "situation", "after"):
        assert first[what] == second[what], what


def test_probe_sites_are_warned_on_the_coarsened_cell(db_path: Path) -> None:
    """Positive control: a probe site inside the coarsened cell but 20 km from the exact footprint is warned
    (over-warning on the shape shown is the safe side), and so is one on the exact footprint."""
    world = {"sites": [((38.05, 35.05), 100.0), ((38.25, 35.25), 100.0), ((39.5, 36.5), 100.0)], "subs": [],
             "probes": [], "after": (39.9, 36.9), "deliver": "affected_or_subscribed", "h": 200.0}
    told = observe(db_path, world, circle(38.25, 35.25, radius_m=1000, lower=3500, upper=5000, start_h=1.2,
                                          end_h=2.5))
    [notice] = [d for d in told["inbox"] if d["payload"].get("type") == "notice"]
    assert sorted(w["site_id"] for w in notice["payload"]["site_warnings"]) == ["site-0", "site-1"]
    assert notice["payload"]["affected"] and notice["reason"] == "agreement"
    # the lead time is measured from the coarsened start (T0 + 1 h, not T0 + 1.2 h)
    assert notice["lead_time_s"] == (T0 + timedelta(hours=1) - NOW - timedelta(seconds=1)).total_seconds()
