"""Replay of the real Paris traffic sample against notified volumes, checked against brute force.

The first 30 minutes of ``quickstart.json.gz`` (real ADS-B state vectors over Paris) are split between two parties
by aircraft address and fed slice by slice through the real :class:`Tracker` on a real SQLite file, with a military
party's volumes over Charles de Gaulle, Orly and a corridor, and one party's aircraft tied to an active operation.
Independently, from the positions the store accepted, the test recomputes with plain shapely point tests and the
brute-force CPA twin (all pairs) which alerts must have been raised, and when, and compares them one for one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from forewarn.core.model import Operation, Party
from forewarn.geo.volume import Volume4D
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker, TrackSettings
from forewarn.store import SQLiteRepository
from forewarn.store.sqlite.tracks import TrackStore
from forewarn.tracks import cpa
from forewarn.tracks.feeds import read_feed
from forewarn.tracks.model import PositionBatch
from tests.builders import agreement
from tests.conftest import TRAFFIC_SAMPLES
from tests.oracles import predict_conflicts_brute

pytestmark = pytest.mark.slow  # the fast tier: python -m pytest -m "not slow"

SAMPLES = TRAFFIC_SAMPLES
QUICKSTART = SAMPLES / "quickstart.json.gz"
MINUTES = 30
STEP_S = 10.0
SETTINGS = TrackSettings(predict_interval_s=math.inf, clear_after_s=20.0)


def _volume(footprint: dict[str, Any], lower: float, upper: float, start: datetime, end: datetime) -> Volume4D:
    return Volume4D.model_validate({"footprint": footprint, "lower_m": lower, "upper_m": upper, "start": start,
                                    "end": end})


def _world(db: Path, t0: datetime) -> tuple[Forewarn, dict[str, Operation]]:
    svc = Forewarn(SQLiteRepository(db), Settings(db=db))
    for pid in ("east", "west", "mil"):
        svc.put_party(Party(id=pid, name=pid, kind="civil" if pid != "mil" else "military"))  # type: ignore[arg-type]
    for a, b in (("east", "west"), ("east", "mil"), ("west", "mil")):
        svc.put_agreement(agreement(f"{a}-{b}", [a, b], h=9260, v=304.8, t=600))
    start, end = t0 - timedelta(minutes=10), t0 + timedelta(minutes=MINUTES + 10)
    filed = t0 - timedelta(hours=2)
    ops = {
        "mil-cdg": Operation(id="mil-cdg", party_id="mil", activity_class="isr_orbit", volumes=[_volume(
            {"kind": "circle", "center": [2.55, 49.01], "radius_m": 12_000}, 0, 2500, start, end)]),
        "mil-orly": Operation(id="mil-orly", party_id="mil", activity_class="isr_orbit", volumes=[_volume(
            {"kind": "polygon", "coordinates": [[2.25, 48.68], [2.45, 48.68], [2.45, 48.78], [2.25, 48.78]]},
            0, 1500, start, end)]),
        "mil-corridor": Operation(id="mil-corridor", party_id="mil", activity_class="tanker_track", volumes=[_volume(
            {"kind": "corridor", "path": [[1.5, 48.5], [3.5, 49.5]], "half_width_m": 3000}, 3000, 6000, start,
            end)]),
        "east-op": Operation(id="east-op", party_id="east", activity_class="transport", volumes=[_volume(
            {"kind": "polygon", "coordinates": [[1.8, 48.4], [3.2, 48.4], [3.2, 49.3], [1.8, 49.3]]},
            0, 6000, start, end)]),
    }
    for k, op in enumerate(ops.values()):
        svc.notify(op, filed + timedelta(minutes=k))
    svc.activate("east-op", "east", filed + timedelta(minutes=10))
    return svc, ops


def _accepted(svc: Forewarn) -> dict[tuple[str, str], np.ndarray]:
    """(party, track) -> accepted rows (t, lat, lon, alt, gs, trk, vs) in time order, as stored."""
    out: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for chunk in TrackStore(svc.repo).positions():
        b = chunk.batch
        cols = np.column_stack([b.t_s, b.lat_deg, b.lon_deg, b.alt_m, b.gs_mps, b.track_deg, b.vs_mps])
        for track in np.unique(b.track_id.astype(str)):
            out[(chunk.party_id, str(track))].append(cols[b.track_id.astype(str) == track])
    return {k: (lambda rows: rows[np.argsort(rows[:, 0], kind="stable")])(np.concatenate(v)) for k, v in out.items()}


def _inside(volume: Volume4D, shape: Any, rows: np.ndarray, vertical_m: float = 0.0) -> np.ndarray:
    """Plain per-point test: footprint shape covers the point, altitude in band (NaN passes), time in window."""
    horizontal = np.array([shape.intersects(shapely.Point(lon, lat)) for lon, lat in rows[:, [2, 1]]], dtype=bool)
    alt = rows[:, 3]
    band = np.isnan(alt) | ((volume.lower_m - vertical_m <= alt) & (alt < volume.upper_m + vertical_m))
    window = (volume.start_s <= rows[:, 0]) & (rows[:, 0] < volume.end_s)
    return np.asarray(horizontal & band & window)


def _runs(flags: np.ndarray, opens_on: bool, initial: bool | None) -> list[tuple[int, str]]:
    """Row indices where a run of ``opens_on`` starts ("open") or ends ("close"), starting from ``initial``."""
    out: list[tuple[int, str]] = []
    previous = initial
    for k, flag in enumerate(flags.tolist()):
        if flag == opens_on and previous != opens_on:
            out.append((k, "open"))
        elif flag != opens_on and previous == opens_on:
            out.append((k, "close"))
        previous = flag
    return out


@pytest.mark.usefixtures("traffic_samples")  # skipped without them on a laptop, failed in CI
def test_paris_replay_matches_brute_force(db_path: Path) -> None:
    feed = read_feed(QUICKSTART)
    batch = feed.batch
    t_start = float(batch.t_s.min())
    batch = batch.take(np.flatnonzero(batch.t_s < t_start + MINUTES * 60))
    batch = batch.take(np.argsort(batch.t_s, kind="stable"))
    party_of = np.array(["east" if int(str(t), 16) % 2 else "west" for t in batch.track_id], dtype=object)
    t0 = datetime.fromtimestamp(t_start, tz=UTC)
    svc, ops = _world(db_path, t0)
    tracker = Tracker(svc, TrackStore(svc.repo), SETTINGS)
    alerts = []
    refs: list[float] = []
    for lo in np.arange(t_start, t_start + MINUTES * 60, STEP_S):
        ref = float(lo + STEP_S - 1)
        in_slice = (batch.t_s >= lo) & (batch.t_s < lo + STEP_S)
        for party in ("east", "west"):
            part = batch.take(np.flatnonzero(in_slice & (party_of == party)))
            if len(part):
                now = datetime.fromtimestamp(ref, tz=UTC)
                alerts += tracker.ingest(part, party, "adsb", now, "east-op" if party == "east" else None).alerts
        alerts += tracker.predict(datetime.fromtimestamp(ref, tz=UTC), ref)
        refs.append(ref)
    accepted = _accepted(svc)
    assert sum(len(v) for v in accepted.values()) > 40_000 and len(accepted) >= 50

    # ---- conformance and intrusions, per track, from plain point tests on the accepted positions
    expected: set[tuple[str, str, float]] = set()
    east_op = ops["east-op"].volumes[0]
    grown = east_op.buffered(SETTINGS.tolerance.horizontal_m)
    for (party, track), rows in accepted.items():
        if party == "east":
            ok = _inside(east_op, grown, rows, SETTINGS.tolerance.vertical_m)
            for k, edge in _runs(ok, False, None):
                expected.add(("nonconforming" if edge == "open" else "conforming", f"conformance:east/{track}",
                              rows[k, 0]))
        for op_id, op in ops.items():
            if op.party_id == party:
                continue
            volume = op.volumes[0]
            for k, edge in _runs(_inside(volume, volume.shape, rows), True, False):
                expected.add(("intrusion" if edge == "open" else "cleared", f"intrusion:{party}/{track}|{op_id}",
                              rows[k, 0]))
    got = {(a.kind, a.encounter, a.at.timestamp()) for a in alerts
           if a.encounter.startswith(("conformance:", "intrusion:"))}
    assert got == expected
    assert sum(k == "intrusion" for k, _, _ in expected) >= 3
    assert sum(k == "nonconforming" for k, _, _ in expected) >= 3

    # ---- predicted conflicts: brute force (all pairs) on the accepted positions, same hysteresis
    open_pairs: dict[tuple[str, str], float] = {}
    expected_conflicts: list[tuple[str, str, float]] = []
    for ref in refs:
        fresh = {k: rows[rows[:, 0] <= ref][-1] for k, rows in accepted.items()
                 if np.any(rows[:, 0] <= ref) and rows[rows[:, 0] <= ref][-1, 0] >= ref - SETTINGS.stale_s}
        keys = sorted(fresh)
        last = np.array([fresh[k] for k in keys]) if keys else np.zeros((0, 7))
        labels = np.array([f"{p}/{t}" for p, t in keys], dtype=object)
        vectors = cpa.TrackVectors.from_batch(PositionBatch(
            track_id=labels, t_s=last[:, 0], lat_deg=last[:, 1], lon_deg=last[:, 2], alt_m=last[:, 3],
            gs_mps=last[:, 4], track_deg=last[:, 5], vs_mps=last[:, 6]),
            lambda label: 0 if label.startswith("east/") else 1, at_s=ref)
        hits = predict_conflicts_brute(vectors, cpa.Minima(9260.0, 304.8), lookahead_s=SETTINGS.lookahead_s)
        names = [str(x) for x in (vectors.track_id if vectors.track_id is not None else [])]
        predicted = {tuple(sorted((names[i], names[j]))) for i, j in hits.pairs()}
        for pair in sorted(predicted):
            if pair not in open_pairs:
                expected_conflicts.append(("predicted_conflict", f"conflict:{pair[0]}|{pair[1]}", ref))
            open_pairs[pair] = ref  # type: ignore[index]
        for pair, seen in list(open_pairs.items()):
            if ref - seen >= SETTINGS.clear_after_s:
                expected_conflicts.append(("cleared", f"conflict:{pair[0]}|{pair[1]}", ref))
                del open_pairs[pair]
    got_conflicts = [(a.kind, a.encounter, a.at.timestamp()) for a in alerts if a.encounter.startswith("conflict:")]
    assert sorted(got_conflicts) == sorted(expected_conflicts)
    assert sum(k == "predicted_conflict" for k, _, _ in expected_conflicts) >= 3
