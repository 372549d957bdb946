"""Property: through the real HTTP API (a ``forewarn serve`` subprocess), no response on any read path carries
what the sharing policy withholds from the caller.

Each example makes random parties (each with a webhook), random agreements (sharing level, per-field release
lists, coarsening, delivery rule) and random operations whose planning-detail fields carry marker strings and
whose geometry, altitudes and times are distinctive numbers (never on a coarsening grid, a 1,000 ft step or a
quarter hour). Every party files its operations (one is amended with new markers) and runs what-if checks;
then every party reads every path: the outcome of its filings and checks, ``GET /v1/operations`` and
``/v1/operations/{id}`` for every operation, ``/v1/inbox``, the ``/v1/stream`` event stream, the
``/v1/situation`` export, ``/v1/parties``, ``/v1/agreements``, and the webhooks the server posts to it.

Live tracks and the ledger are in the same worlds: parties register protected sites (names are markers), feed
tracks (call signs are markers) over HTTP and the WebSocket — intruders inside other parties' volumes during
their windows (intrusion alerts; nonconforming ones when they fly for their own activated operation) and parties
converging on one point (predicted conflicts) — and every party reads ``/v1/tracks``, ``/quality``, the
``/v1/tracks/stream`` events, the answers to its own feeds, the alerts in its inbox, stream and webhooks, the daily
report (JSON for every day the world touches, the HTML page), ``/v1/sites``, ``/v1/audit/sites/{id}``,
``/v1/audit/shown``, the receipt of every delivery and ``/v1/ledger/head``. Then one agreement ends and the alerts
and tracks are read again. Explicit worlds cover what random ones rarely make (a chain A-B-P; a nonconforming
track near two parties not bound to each other).

The oracle is written from the agreements alone (not from forewarn.core.policy): a party bound to no agreement
with the owner must see no trace of the owner (id, operations, tracks, call signs, positions, sites, markers,
numbers; nor anything of the parties of earlier examples); a bound party must not see the call signs of tracks
unless ``call_signs`` is released to it (call signs are planning detail), nor
the markers of fields not released to it; where an agreement coarsens the owner for it, it must not see the
owner's exact footprint numbers (centre, radius, vertices, route, half-width; the hull's own vertices are
allowed when only a convex hull is asked), exact altitudes (when altitudes are rounded) or exact times (when
times are rounded; instants compared as instants, whatever their spelling). Hidden operations, sites and
deliveries answer every path (get, feed naming it, audit, receipt) exactly like ones that never existed. Positive
controls check that what is released does arrive (operations, detail, tracks of bound parties, intrusions told to
the bound owner of the volume), so the test can fail both ways.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import shapely
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from websockets.sync.client import connect as ws_connect

from forewarn.core.credentials import new_credential
from forewarn.geo import geodesy
from forewarn.geo.volume import Volume4D
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.store.sqlite.repository import SQLiteRepository
from tests.multiprocess_support import pg_party
from tests.server_support import Receiver, Server, add_party, sse_events

FIELDS = ("purpose", "unit", "call_signs", "notes")
CELL = 1 / 240  # 0.25 arc-minute in degrees: every coarsening grid used here is a multiple of it
BASE = (38.0, 35.0)
RUN = itertools.count()
SCOPES = ["notices:file", "read", "ack", "sites:register", "tracks:feed"]
MEET = (38.6, 35.4)
"""Where converging tracks meet (lon, lat), far from every volume of the world."""
GEOD = Geod(ellps="WGS84")
PAST: set[str] = set()
"""Ids of the parties and tracks of earlier examples (bound to no party of a later one), and their call signs."""
FEED_CLOCK = [0.0]
"""Feed time (POSIX s) of the last converging batch: each example's batches come later (prediction runs on
feed time and only when the feed moves on)."""


class Env:
    """The running server, an admin's headers, the webhook receiver, a client (short repr for hypothesis)."""

    def __init__(self, server: Server, admin: dict[str, str], receiver: Receiver, client: httpx.Client,
                 repo: SQLiteRepository | PostgresRepository) -> None:
        self.server, self.admin, self.receiver, self.client, self.repo = server, admin, receiver, client, repo

    def __repr__(self) -> str:
        return f"Env({self.server.url})"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The same server on each backend: the SQLite file, or a fresh PostgreSQL database (issue 16: the
    disclosure policy holds on both)."""
    db = tmp_path_factory.mktemp("policy-api") / "api.sqlite"
    server_env = {"FOREWARN_WORKER_POLL_S": "0.05"}
    repo: SQLiteRepository | PostgresRepository
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create()
        server_env["FOREWARN_DATABASE_URL"] = url
        admin = pg_party(url, "admin", "--scopes", "admin")
        repo = PostgresRepository(url, max_size=2)
    else:
        admin = add_party(db, "admin", "--scopes", "admin")
        repo = SQLiteRepository(db)
    receiver = Receiver()
    receiver.start()
    server = Server(db)
    server.start(server_env)
    # no keep-alive: the server closes idle connections, and hypothesis may pause between examples
    client = httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        yield Env(server=server, admin=server.token(admin), receiver=receiver, client=client, repo=repo)
    finally:
        repo.close()
        client.close()
        server.stop()
        receiver.stop()


# ------------------------------------------------------------------------------------------------ the example
def off_grid(k: int, f: int) -> float:
    """A distinctive coordinate in grid cell ``k`` (of 0.25'), at least 0.0005 deg from any grid line."""
    return k * CELL + 0.0005 + f * 0.000013 + 3.1e-9


@st.composite
def footprints(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["circle", "polygon", "corridor"]))
    kx, ky = draw(st.integers(-6, 6)), draw(st.integers(-6, 6))
    fs = st.integers(0, 190)
    cx, cy = BASE[0] + off_grid(kx, draw(fs)), BASE[1] + off_grid(ky, draw(fs))
    if kind == "circle":
        return {"kind": "circle", "center": [cx, cy], "radius_m": 1500 + draw(st.integers(0, 40)) * 97.3 + 0.137}
    if kind == "polygon":
        spans = [draw(st.integers(2, 8)) for _ in range(8)]
        corners = [(-spans[0], -spans[1]), (spans[2], -spans[3]), (spans[4], spans[5]), (-spans[6], spans[7])]
        return {"kind": "polygon", "coordinates": [
            [BASE[0] + off_grid(kx + dx, draw(fs)), BASE[1] + off_grid(ky + dy, draw(fs))] for dx, dy in corners]}
    steps = draw(st.lists(st.tuples(st.integers(-8, 8), st.integers(-8, 8)).filter(lambda s: s != (0, 0)),
                          min_size=1, max_size=2))
    path = [(kx, ky)]
    for dx, dy in steps:
        path.append((path[-1][0] + dx, path[-1][1] + dy))
    return {"kind": "corridor", "path": [[BASE[0] + off_grid(x, draw(fs)), BASE[1] + off_grid(y, draw(fs))]
                                         for x, y in path],
            "half_width_m": 500 + draw(st.integers(0, 30)) * 41.9 + 0.173}


@st.composite
def volumes(draw: st.DrawFn) -> dict[str, Any]:
    lower = 300 + draw(st.integers(0, 12)) * 457.2 + 17.3 + draw(st.integers(0, 99)) * 0.011
    start_min = draw(st.integers(0, 150))
    return {"footprint": draw(footprints()), "lower_m": lower,
            "upper_m": lower + 800 + draw(st.integers(0, 20)) * 211.1 + 0.29,
            "start_min": start_min, "end_min": start_min + draw(st.integers(20, 180))}


@st.composite
def agreements(draw: st.DrawFn, n: int) -> dict[str, Any]:
    members = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=n, unique=True))
    out: dict[str, Any] = {"members": members, "sharing": draw(st.sampled_from(["safety_envelope",
                                                                                 "planning_detail"])),
                           "deliver": draw(st.sampled_from(["all", "affected_or_subscribed"]))}
    out["released"] = {}
    if out["sharing"] == "planning_detail":
        for f in FIELDS:
            if draw(st.booleans()):
                out["released"][f] = draw(st.lists(st.sampled_from(members), unique=True))
    if draw(st.booleans()):
        c = {"of": draw(st.lists(st.sampled_from(members), unique=True)),
             "grid_arcmin": draw(st.sampled_from([None, 1.0, 6.0, 30.0])), "convex_hull": draw(st.booleans()),
             "altitude_step_ft": draw(st.sampled_from([0.0, 1000.0])),
             "time_step_s": draw(st.sampled_from([0.0, 900.0]))}
        if c["grid_arcmin"] is None and not c["convex_hull"] and not c["altitude_step_ft"]:
            c["time_step_s"] = 900.0
        out["coarsening"] = c
    return out


@st.composite
def examples(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 4))
    ags = draw(st.lists(agreements(n), max_size=3))
    ops = [(owner, draw(st.sampled_from(["transport", "strike_area", "cruise_missile_corridor", "isr_orbit"])),
            draw(st.lists(volumes(), min_size=1, max_size=2)))
           for owner in range(n) for _ in range(draw(st.integers(0, 2)))]
    checks = draw(st.lists(st.tuples(st.integers(0, n - 1), volumes()), max_size=2))
    # live tracks: intruders (party, index of the operation whose first volume it flies into, whether it flies
    # for its own first operation, activated, so that it may also be nonconforming, whether the intruder is
    # rather one of the parties bound to the operation's owner, so that alerts are raised); parties converging on one
    # point (predicted conflicts between every bound pair among them); protected sites (registrant)
    intrusions = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7), st.booleans(), st.booleans()),
                               max_size=3))
    converging = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=2, max_size=n))
    sites = draw(st.lists(st.integers(0, n - 1), max_size=2))
    return {"n": n, "agreements": ags, "operations": ops, "checks": checks, "amend": draw(st.booleans()),
            "intrusions": intrusions, "converging": converging, "sites": sites}


# ------------------------------------------------------------------------------------------------ the oracle
@dataclass
class Owned:
    """What one operation puts in the world, for the oracle."""

    id: str
    owner: str
    markers: dict[str, list[str]] = field(default_factory=dict)  # field -> marker strings (all versions)
    volumes: list[Volume4D] = field(default_factory=list)
    specs: list[dict[str, Any]] = field(default_factory=list)


def footprint_points(spec: dict[str, Any]) -> list[tuple[float, float]]:
    """The (lon, lat) positions a footprint is given by: a circle's centre, a polygon's or a corridor's vertices."""
    fp = spec["footprint"]
    if fp["kind"] == "circle":
        return [tuple(fp["center"])]
    return [tuple(xy) for xy in (fp["coordinates"] if fp["kind"] == "polygon" else fp["path"])]


def footprint_numbers(spec: dict[str, Any]) -> set[float]:
    fp = spec["footprint"]
    if fp["kind"] == "circle":
        return {*fp["center"], fp["radius_m"]}
    if fp["kind"] == "polygon":
        return {c for xy in fp["coordinates"] for c in xy}
    return {c for xy in fp["path"] for c in xy} | {fp["half_width_m"]}


def withheld(viewer: str, op: Owned, ags: list[dict[str, Any]]) -> tuple[set[str], set[float]]:
    """(strings, numbers) of ``op`` that ``viewer`` must never receive, from the agreements alone."""
    if viewer == op.owner:
        return set(), set()
    binding = [a for a in ags if viewer in a["parties"] and op.owner in a["parties"]]
    all_markers = {m for ms in op.markers.values() for m in ms}
    numbers = {x for s in op.specs for x in footprint_numbers(s)} | {x for s in op.specs for x in
                                                                      (s["lower_m"], s["upper_m"])}
    times = {v.model_dump(mode="json")[k] for v in op.volumes for k in ("start", "end")}
    epochs = {t for v in op.volumes for t in (v.start_s, v.end_s)}
    if not binding:
        return {op.id, op.owner, *all_markers, *times}, numbers | epochs
    released = {f for a in binding if a["sharing"] == "planning_detail"
                for f, partners in a.get("released_fields", {}).items() if viewer in partners}
    strings = {m for f, ms in op.markers.items() if f not in released for m in ms}
    coarse = [a["coarsening"] for a in binding
              if a.get("coarsening") and (not a["coarsening"]["of"] or op.owner in a["coarsening"]["of"])]
    out_numbers: set[float] = set()
    if coarse:
        grid = any(c.get("grid_arcmin") for c in coarse)
        hull = any(c.get("convex_hull") for c in coarse)
        if grid or hull:
            for spec, v in zip(op.specs, op.volumes, strict=True):
                allowed: set[float] = set()
                if hull and not grid:  # the hull's vertices are the footprint's own: those may show
                    allowed = {c for xy in shapely.convex_hull(v.shape).exterior.coords for c in xy}
                out_numbers |= footprint_numbers(spec) - allowed
        if any(c.get("altitude_step_ft") for c in coarse):
            out_numbers |= {x for s in op.specs for x in (s["lower_m"], s["upper_m"])}
        if any(c.get("time_step_s") for c in coarse):
            strings |= times
            out_numbers |= epochs
    return strings, out_numbers


@dataclass
class Fed:
    """A track one party fed: its id, call sign (a marker), operation and the coordinates it reported."""

    id: str
    owner: str
    callsign: str
    operation_id: str | None
    numbers: set[float] = field(default_factory=set)
    target: str | None = None
    """The operation whose first volume it flies into (intruders)."""


@dataclass
class Site:
    """A protected site one party registered: id, name (a marker) and coordinates."""

    id: str
    owner: str
    name: str
    numbers: set[float]


def bound_to(a: str, b: str, ags: list[dict[str, Any]]) -> bool:
    return a == b or any(a in g["parties"] and b in g["parties"] for g in ags)


def traces(viewer: str, names: list[str], tracks: list[Fed], sites: list[Site],
           ags: list[dict[str, Any]]) -> tuple[set[str], set[float]]:
    """(strings, numbers) of parties, tracks and sites ``viewer`` must never receive, from the agreements alone:
    every trace of a party no agreement binds it to (its id, track ids, call signs, positions, sites; those of
    earlier examples too, :data:`PAST`); the call
    signs of a bound party's tracks unless that party releases ``call_signs`` to it (call signs are planning
    detail)."""
    strings = {p for p in names if not bound_to(viewer, p, ags)} | (PAST - set(names))
    numbers: set[float] = set()
    for t in tracks:
        if not bound_to(viewer, t.owner, ags):
            strings |= {t.id, t.callsign}
            numbers |= t.numbers
        elif viewer != t.owner and not any(
                viewer in g["parties"] and t.owner in g["parties"] and g["sharing"] == "planning_detail"
                and viewer in g["released_fields"].get("call_signs", []) for g in ags):
            strings.add(t.callsign)
    for site in sites:
        if not bound_to(viewer, site.owner, ags):
            strings |= {site.id, site.name}
            numbers |= site.numbers
    return strings, numbers


NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
POSITION = re.compile(r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*[,\]]")
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def instant(text: str) -> datetime | None:
    """``text`` as a UTC instant, if it is one (ISO 8601; a time without offset is UTC)."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def numbers_in(doc: Any, digits: int | None) -> set[float]:
    if isinstance(doc, str):  # a page: every decimal number written in it
        return {round(float(x), digits) if digits is not None else float(x) for x in NUMBER.findall(doc)}
    if isinstance(doc, dict):
        return set().union(*(numbers_in(v, digits) for v in doc.values())) if doc else set()
    if isinstance(doc, list):
        return set().union(*(numbers_in(v, digits) for v in doc)) if doc else set()
    if isinstance(doc, float | int) and not isinstance(doc, bool):
        return {round(float(doc), digits) if digits is not None else float(doc)}
    return set()


def assert_nothing_withheld(viewer: str, where: str, doc: Any, owned: list[Owned], ags: list[dict[str, Any]],
                            digits: int | None = None,
                            extra: tuple[set[str], set[float]] = (set(), set())) -> None:
    """No withheld string, instant or number of any operation in ``owned`` (nor any of ``extra``) in ``doc``
    (JSON, or a page as text): instants are compared as instants, whatever their ISO 8601 spelling."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    found = numbers_in(doc, digits)
    instants = {t for m in INSTANT.findall(text) if (t := instant(m)) is not None}
    leaked = sorted(s for s in extra[0] if s in text)
    at = text.find(leaked[0]) if leaked else 0
    assert not leaked, (f"{where} as {viewer} carries {leaked} (parties, tracks, sites or call signs withheld): "
                        f"...{text[max(0, at - 300):at + 200]}...")
    leaked_x = sorted(round(x, digits) if digits is not None else x for x in extra[1])
    assert not set(leaked_x) & found, f"{where} as {viewer} carries withheld positions {set(leaked_x) & found}"
    for op in owned:
        strings, numbers = withheld(viewer, op, ags)
        leaked = sorted(s for s in strings if s in text)
        assert not leaked, f"{where} as {viewer} carries {leaked} of {op.id} ({op.owner})"
        times = {t for s in strings if (t := instant(s)) is not None}
        assert not times & instants, f"{where} as {viewer} carries exact times {times & instants} of {op.id}"
        if digits is not None:
            # a rounded document (the situation's GeoJSON, 7 decimals) may show, by chance, a number of the
            # viewer's own geometry equal at that precision to one coordinate of a withheld vertex: a vertex
            # counts as leaked when both its coordinates appear together, as a position
            points = {(round(float(a), digits), round(float(b), digits)) for a, b in POSITION.findall(text)}
            corners = {(round(x, digits), round(y, digits)) for spec in op.specs for x, y in footprint_points(spec)
                       if x in numbers and y in numbers}
            shown = corners & points
            numbers = {round(x, digits) for x in numbers} - {c for xy in corners - shown for c in xy}
            found = found | {c for xy in shown for c in xy}
        leaked_n = sorted(numbers & found)
        assert not leaked_n, (f"{where} as {viewer} carries exact numbers {leaked_n} of {op.id} ({op.owner}); "
                              f"agreements {ags}; volumes {op.specs}; response {text[:3000]}")


def coarsened_for(viewer: str, owner: str, ags: list[dict[str, Any]]) -> bool:
    return viewer != owner and any(
        viewer in a["parties"] and owner in a["parties"] and a.get("coarsening")
        and (not a["coarsening"]["of"] or owner in a["coarsening"]["of"]) for a in ags)


def assert_conflicts_derived_from_what_was_shown(viewer: str, where: str, conflicts: list[dict[str, Any]],
                                                 own: dict[str, list[Volume4D]],
                                                 shown: dict[str, list[Volume4D]],
                                                 ags: list[dict[str, Any]]) -> None:
    """Each conflict with a counterpart coarsened for ``viewer`` has the figures one gets from the viewer's own
    exact volume and the counterpart's volume *as shown to the viewer* (the slow obvious measurement)."""
    for c in conflicts:
        mine, theirs = (c["a"], c["b"]) if c["a"]["party_id"] == viewer else (c["b"], c["a"])
        assert mine["party_id"] == viewer, f"{where}: a conflict {viewer} is not a side of"
        if not coarsened_for(viewer, theirs["party_id"], ags):
            continue
        a = own[mine["operation_id"]][mine["volume_index"]]
        b = shown[theirs["operation_id"]][theirs["volume_index"]]
        bound = (geodesy.geodesic_area_m2(b.shape) / 1e6, b.upper_m - b.lower_m, b.end_s - b.start_s, 0.0)
        figures = (c["overlap"]["area_km2"], c["overlap"]["altitude_overlap_m"], c["overlap"]["time_overlap_s"],
                   c["separation"]["horizontal_m"])
        if where == "GET /v1/inbox" and figures == pytest.approx(bound, rel=1e-9):
            # the documented fallback while the service gives plan_deliveries no live picture: upper bounds
            # from the counterpart's coarsened volume alone
            continue
        inter = a.shape.intersection(b.shape)
        area = geodesy.geodesic_area_m2(inter) / 1e6 if inter.area > 0 else 0.0
        assert c["overlap"]["area_km2"] == pytest.approx(area, rel=1e-6, abs=1e-9), (where, c)
        assert c["overlap"]["altitude_overlap_m"] == pytest.approx(min(a.upper_m, b.upper_m)
                                                                   - max(a.lower_m, b.lower_m))
        assert c["overlap"]["time_overlap_s"] == pytest.approx(min(a.end_s, b.end_s) - max(a.start_s, b.start_s))
        assert c["separation"]["horizontal_m"] == pytest.approx(geodesy.geodesic_distance_m(a.shape, b.shape),
                                                                rel=1e-6, abs=1e-3), (where, c)


# ------------------------------------------------------------------------------------------------ the property
def iso(t: datetime) -> str:
    return t.isoformat()


def volume_body(spec: dict[str, Any], t0: datetime) -> dict[str, Any]:
    return {"footprint": spec["footprint"], "lower_m": spec["lower_m"], "upper_m": spec["upper_m"],
            "start": iso(t0 + timedelta(minutes=spec["start_min"])),
            "end": iso(t0 + timedelta(minutes=spec["end_min"]))}


def distinct(spec: dict[str, Any], j: int) -> dict[str, Any]:
    """``spec`` with every number made unique to operation ``j`` (still far off any grid line or step)."""
    # 3.7e-7 deg apart: distinct even at the export's 1e-7 precision; far below the 1.3e-5 deg between draws
    eps, eps_m = (j + 1) * 3.7e-7, (j + 1) * 1.3e-5

    def shift(xy: list[float]) -> list[float]:
        return [xy[0] + eps, xy[1] + eps]

    fp = dict(spec["footprint"])
    if fp["kind"] == "circle":
        fp.update(center=shift(fp["center"]), radius_m=fp["radius_m"] + eps_m)
    elif fp["kind"] == "polygon":
        fp.update(coordinates=[shift(xy) for xy in fp["coordinates"]])
    else:
        fp.update(path=[shift(xy) for xy in fp["path"]], half_width_m=fp["half_width_m"] + eps_m)
    return dict(spec, footprint=fp, lower_m=spec["lower_m"] + eps_m, upper_m=spec["upper_m"] + eps_m)


def markers(op_id: str, version: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"purpose": f"MKP{tag}v{version}", "unit": f"MKU{tag}v{version}", "call_signs": [f"MKC{tag}v{version}"],
            "notes": f"MKN{tag}v{version}"}


# ------------------------------------------------------------------------------------------------ tracks, sites
def same_as_missing(env: Env, h: dict[str, str], path: str, hidden_id: str, method: str = "GET",
                    **kw: Any) -> None:
    """``path`` (naming ``hidden_id``, a thing the caller may not see) answers exactly like the same path naming
    a thing that never existed (the error may echo the id it was given)."""
    hidden = env.client.request(method, path, headers=h, **kw)
    never = env.client.request(method, path.replace(hidden_id, f"{hidden_id}-never"), headers=h, **kw)
    assert hidden.status_code == never.status_code, (path, hidden.text, never.text)
    a, b = hidden.json()["error"], never.json()["error"]
    assert (a["code"], a["message"], a["details"]) == (
        b["code"], b["message"].replace(f"{hidden_id}-never", hidden_id),
        json.loads(json.dumps(b["details"]).replace(f"{hidden_id}-never", hidden_id))), (path, a, b)


def register_sites(env: Env, example: dict[str, Any], names: list[str], heads: dict[str, dict[str, str]],
                   responses: dict[str, list[tuple[str, Any]]]) -> list[Site]:
    """Each drawn registrant registers a protected site whose name is a marker, at a distinctive point."""
    out: list[Site] = []
    for k, i in enumerate(example["sites"]):
        tag = uuid.uuid4().hex[:10]
        point = [BASE[0] + off_grid(k - 3, 37 + k), BASE[1] + off_grid(2 - k, 91 + k)]
        site = Site(id=f"s{tag}", owner=names[i], name=f"MKS{tag}", numbers=set(point))
        r = env.client.post("/v1/sites", headers=heads[site.owner], json={
            "id": site.id, "name": site.name, "category": "hospital", "point": point, "buffer_m": 731.3})
        assert r.status_code == 201, r.text
        responses[site.owner].append(("POST /v1/sites", r.json()))
        out.append(site)
    return out


def interior(v: Volume4D, k: int) -> tuple[float, float]:
    """A point strictly inside ``v``'s footprint that is none of its defining numbers, distinct for each ``k``
    (lon, lat degrees)."""
    p = shapely.point_on_surface(v.shape)
    e = (k + 1) * 2.3e-6
    for dx, dy in ((e, 0.83 * e), (-e, -0.83 * e), (e, -0.83 * e), (-e, 0.83 * e)):
        if v.shape.contains(shapely.Point(p.x + dx, p.y + dy)):
            return p.x + dx, p.y + dy
    raise AssertionError(f"no interior point near {p} in {v}")


def row(track: str, t_s: float, lon: float, lat: float, alt: float, gs: float, course: float,
        callsign: str) -> dict[str, Any]:
    return {"track_id": track, "t_s": t_s, "lat_deg": lat, "lon_deg": lon, "alt_m": alt, "gs_mps": gs,
            "track_deg": course, "vs_mps": 0.0, "callsign": callsign}


def feed_tracks(env: Env, example: dict[str, Any], names: list[str], heads: dict[str, dict[str, str]],
                owned: list[Owned], ags: list[dict[str, Any]],
                responses: dict[str, list[tuple[str, Any]]]) -> list[Fed]:
    """Feed the drawn tracks: intruders fly slowly inside another operation's first volume during its window
    (intrusion alerts; nonconforming ones when they fly for their own activated operation); converging parties
    head for :data:`MEET` at close altitudes (predicted conflicts), one of them over the WebSocket."""
    c = env.client
    out: list[Fed] = []
    activated: set[str] = set()
    for k, (i, j, for_own, pick_bound) in enumerate(example["intrusions"]):
        if not owned:
            break
        intruder, target = names[i], owned[j % len(owned)]
        partners = [p for p in names if p != target.owner and bound_to(p, target.owner, ags)]
        if pick_bound and partners:
            intruder = partners[i % len(partners)]
        mine = [o for o in owned if o.owner == intruder]
        op_id = mine[0].id if for_own and mine else None
        if op_id is not None and op_id not in activated:
            r = c.post(f"/v1/operations/{op_id}/activate", headers=heads[intruder])
            assert r.status_code == 200, r.text
            responses[intruder].append(("activate outcome", r.json()))
            activated.add(op_id)
        v = target.volumes[0]
        lon, lat = interior(v, k)
        tag = uuid.uuid4().hex[:8]
        fed = Fed(id=f"T{tag}", owner=intruder, callsign=f"MKT{tag}", operation_id=op_id, numbers={lon, lat},
                  target=target.id)
        alt = (v.lower_m + v.upper_m) / 2 + 0.37
        rows = [row(fed.id, v.start_s + 61.7 + 10 * k, lon, lat, alt, 0.5, 90.0, fed.callsign) for k in range(2)]
        r = c.post("/v1/tracks/positions", headers=heads[intruder], json=rows,
                   params={"source": "radar", **({"operation_id": op_id} if op_id else {})})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 2, r.text
        responses[intruder].append(("POST /v1/tracks/positions", r.json()))
        out.append(fed)
    start = max(FEED_CLOCK[0] + 97.3, (datetime.now(UTC) + timedelta(hours=9)).timestamp())
    n = len(example["converging"])
    for k, i in enumerate(example["converging"]):
        party, tag = names[i], uuid.uuid4().hex[:8]
        bearing = 360.0 * k / n + 17.3
        course = (bearing + 180.0) % 360.0
        t1 = start + 1.5 * k
        rows = []
        for dt, dist in ((-5.0, 6750.0), (0.0, 6000.0)):
            lon, lat, _ = GEOD.fwd(MEET[0], MEET[1], bearing, dist)
            rows.append(row(f"T{tag}", t1 + dt, lon, lat, 3000.0 + 7.3 * k + 0.123, 150.0, course, f"MKT{tag}"))
        fed = Fed(id=f"T{tag}", owner=party, callsign=f"MKT{tag}", operation_id=None,
                  numbers={x for r_ in rows for x in (r_["lon_deg"], r_["lat_deg"])})
        if k == 0:  # over the WebSocket
            token = heads[party]["Authorization"].split()[1]
            url = env.server.url.replace("http://", "ws://") + f"/v1/tracks/ws?source=ws&access_token={token}"
            with ws_connect(url, open_timeout=10) as socket:
                socket.send(json.dumps(rows))
                answer = json.loads(socket.recv(timeout=30))
            assert answer["accepted"] == 2, answer
            responses[party].append(("WS /v1/tracks/ws", answer))
        else:
            r = c.post("/v1/tracks/positions", headers=heads[party], json=rows, params={"source": "adsb"})
            assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
            responses[party].append(("POST /v1/tracks/positions", r.json()))
        out.append(fed)
        FEED_CLOCK[0] = t1
    return out


def track_events(url: str, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The first ``count`` ``track`` events of ``GET /v1/tracks/stream``."""
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers=headers, params={"interval_s": 0.2}, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) >= count:
                    break
    return events


def read_tracks(env: Env, viewer: str, names: list[str], h: dict[str, str], tracks: list[Fed], owned: list[Owned],
                ags: list[dict[str, Any]], responses: dict[str, list[tuple[str, Any]]]) -> None:
    """Every live-track read path as ``viewer``; positive control: it sees exactly the tracks of this world it is
    bound to; a hidden operation answers a feed like a missing one."""
    c = env.client
    listed = c.get("/v1/tracks", headers=h)
    assert listed.status_code == 200, listed.text
    responses[viewer].append(("GET /v1/tracks", listed.json()))
    ours = {t.id for t in tracks}
    seen = {(t["party_id"], t["track_id"]) for t in listed.json() if t["track_id"] in ours}
    assert seen == {(t.owner, t.id) for t in tracks if bound_to(viewer, t.owner, ags)}, (viewer, seen)
    responses[viewer].append(("GET /v1/tracks/quality", c.get("/v1/tracks/quality", headers=h).json()))
    if listed.json():
        events = track_events(f"{env.server.url}/v1/tracks/stream", h, len(listed.json()))
        responses[viewer].append(("GET /v1/tracks/stream", events))
    for op in owned:
        if not bound_to(viewer, op.owner, ags):
            same_as_missing(env, h, f"/v1/tracks/positions?operation_id={op.id}", op.id, "POST",
                            json=[row("Tprobe", 1.0e9, 38.0, 35.0, 1000.0, 1.0, 0.0, "X")])


def read_reports_and_ledger(env: Env, viewer: str, names: list[str], heads: dict[str, dict[str, str]],
                            sites: list[Site], owned: list[Owned], inbox: list[dict[str, Any]],
                            ags: list[dict[str, Any]], responses: dict[str, list[tuple[str, Any]]]) -> None:
    """The daily report (JSON for every day the world touches, the page for today), the sites and their audit,
    the ledger's audit of every operation, the receipts of every delivery (others' answer like missing ones)
    and the ledger head, as ``viewer``."""
    c, h = env.client, heads[viewer]
    now = datetime.now(UTC)
    days = {now.date(), (now + timedelta(hours=2)).date(), (now + timedelta(hours=8)).date(),
            datetime.fromtimestamp(FEED_CLOCK[0], UTC).date()}
    for day in sorted(days):
        r = c.get(f"/v1/reports/{day.isoformat()}", headers=h)
        assert r.status_code == 200, r.text
        responses[viewer].append((f"GET /v1/reports/{day}", r.json()))
    page = c.get(f"/v1/reports/{now.date().isoformat()}.html", headers=h)
    assert page.status_code == 200, page.text
    # the page's embedded plots (base64 PNG) are pixels: a party id could turn up in them by chance
    text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "data:", page.text)
    assert len(text) < len(page.text) or "<img" not in page.text
    responses[viewer].append((f"GET /v1/reports/{now.date()}.html", text))
    listed = c.get("/v1/sites", headers=h).json()
    responses[viewer].append(("GET /v1/sites", listed))
    assert {s["id"] for s in listed} >= {s.id for s in sites if bound_to(viewer, s.owner, ags)}
    for site in sites:
        if site.owner == viewer:
            r = c.get(f"/v1/audit/sites/{site.id}", headers=h)
            assert r.status_code == 200, r.text
            responses[viewer].append((f"GET /v1/audit/sites/{site.id}", r.json()))
        else:
            same_as_missing(env, h, f"/v1/audit/sites/{site.id}", site.id)
    for op in owned:
        asked = names if op.owner == viewer else [viewer]
        for party in asked:
            r = c.get("/v1/audit/shown", headers=h, params={"party": party, "operation": op.id})
            assert r.status_code == 200, r.text
            responses[viewer].append((f"GET /v1/audit/shown {party} {op.id}", r.json()))
        if op.owner != viewer:
            same_as_missing(env, h, f"/v1/audit/shown?party={op.owner}&operation={op.id}", op.id)
    for d in inbox:
        r = c.get(f"/v1/deliveries/{d['id']}/receipt", headers=h)
        assert r.status_code in (200, 404), r.text
        if r.status_code == 200:
            responses[viewer].append((f"GET /v1/deliveries/{d['id']}/receipt", r.json()))
    for other in names:
        if other != viewer:
            for d in c.get("/v1/inbox", headers=heads[other], params={"limit": 3}).json():
                same_as_missing(env, h, f"/v1/deliveries/{d['id']}/receipt", d["id"])
    responses[viewer].append(("GET /v1/ledger/head", c.get("/v1/ledger/head", headers=h).json()))


def circle(kx: int, ky: int, radius_m: float, start_min: int = 10) -> dict[str, Any]:
    lower = 1000.0 + 17.3
    return {"footprint": {"kind": "circle", "center": [BASE[0] + off_grid(kx, 5), BASE[1] + off_grid(ky, 7)],
                          "radius_m": radius_m}, "lower_m": lower, "upper_m": lower + 1500.29,
            "start_min": start_min, "end_min": start_min + 90}


def ag(members: list[int], **extra: Any) -> dict[str, Any]:
    return {"members": members, "sharing": "safety_envelope", "deliver": "all", "released": {}} | extra


CHAIN = {  # A-B and B-P bound, A-P not: nothing of A's tracks may reach P through B (alerts, conflicts)
    "n": 3, "agreements": [ag([0, 1]), ag([1, 2], sharing="planning_detail", released={"call_signs": [2]})],
    "operations": [(1, "strike_area", [circle(0, 0, 2500.137)])], "checks": [], "amend": False,
    "intrusions": [(0, 0, False, False), (2, 0, False, False)], "converging": [0, 1, 2], "sites": [1]}
ENDANGERED = {  # A strays from its active operation into B's volume, near C's: B and C are not bound to each other
    "n": 3, "agreements": [ag([0, 1]), ag([0, 2])],
    "operations": [(0, "transport", [circle(-6, -6, 1500.137)]), (1, "strike_area", [circle(3, 3, 2500.137)]),
                   (2, "isr_orbit", [circle(4, 4, 2500.137)])], "checks": [], "amend": False,
    "intrusions": [(0, 1, True, False)], "converging": [1, 2], "sites": []}


@example(example=CHAIN)
@example(example=ENDANGERED)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(example=examples())
@pytest.mark.slow
def test_no_response_on_any_path_carries_what_the_policy_withholds(env: Env, example: dict[str, Any]) -> None:
    c, run = env.client, next(RUN)
    names = [f"r{run}q{i}z" for i in range(example["n"])]
    heads: dict[str, dict[str, str]] = {}
    for name in names:
        r = c.post("/v1/parties", headers=env.admin, json={"id": name, "name": name.upper(),
                                                           "webhook_url": env.receiver.url})
        assert r.status_code == 201, r.text
        # the credentials route cannot grant tracks:feed (its scope list lacks it): stored directly, as the CLI does
        cred, secret = new_credential(name, SCOPES, datetime.now(UTC))
        with env.repo.transaction():
            env.repo.put_credential(cred)
        heads[name] = env.server.token({"client_id": cred.client_id, "client_secret": secret})
    ags: list[dict[str, Any]] = []
    for k, spec in enumerate(example["agreements"]):
        body: dict[str, Any] = {"id": f"r{run}a{k}", "name": f"agreement {k}",
                                "parties": [names[i] for i in spec["members"]], "sharing": spec["sharing"],
                                "deliver": spec["deliver"],
                                "released_fields": {f: [names[i] for i in ps] for f, ps in spec["released"].items()}}
        if "coarsening" in spec:
            body["coarsening"] = dict(spec["coarsening"], of=[names[i] for i in spec["coarsening"]["of"]])
        r = c.post("/v1/agreements", headers=env.admin, json=body)
        assert r.status_code == 201, r.text
        ags.append(body)

    t0 = (datetime.now(UTC) + timedelta(hours=2)).replace(second=13, microsecond=123457)
    owned: list[Owned] = []
    responses: dict[str, list[tuple[str, Any]]] = {name: [] for name in names}
    for j, (owner_i, cls, vols) in enumerate(example["operations"]):
        owner = names[owner_i]
        op = Owned(id=f"{owner}-op{j}", owner=owner)
        detail = markers(op.id, 1)
        op.markers = {f: [v] if isinstance(v, str) else list(v) for f, v in detail.items()}
        op.specs = [distinct(v, j) for v in vols]
        bodies = [volume_body(v, t0 + timedelta(seconds=j)) for v in op.specs]
        op.volumes = [Volume4D.model_validate(b) for b in bodies]
        r = c.post("/v1/operations", headers=heads[owner], json={"id": op.id, "activity_class": cls,
                                                                 "volumes": bodies, "detail": detail})
        assert r.status_code == 201, r.text
        responses[owner].append(("filing outcome", r.json()))
        owned.append(op)
    if example["amend"] and owned:
        op = owned[0]
        detail = markers(op.id, 2)
        for f, v in detail.items():
            op.markers[f] += [v] if isinstance(v, str) else list(v)
        r = c.post(f"/v1/operations/{op.id}/amend", headers=heads[op.owner], json={"version": 1, "detail": detail})
        assert r.status_code == 200, r.text
        responses[op.owner].append(("amend outcome", r.json()))
    probes: dict[str, list[Volume4D]] = {}  # what-if id -> its volumes
    for k, (viewer_i, spec) in enumerate(example["checks"]):
        viewer = names[viewer_i]
        probe = f"{viewer}-check{k}"
        r = c.post("/v1/check", headers=heads[viewer], json={"id": probe, "activity_class": "transport",
                                                             "volumes": [volume_body(spec, t0)]})
        assert r.status_code == 200, r.text
        responses[viewer].append(("check outcome", r.json()))
        probes[probe] = [Volume4D.model_validate(volume_body(spec, t0))]

    sites = register_sites(env, example, names, heads, responses)
    tracks = feed_tracks(env, example, names, heads, owned, ags, responses)

    delivery_ids: dict[str, set[str]] = {}
    for viewer in names:
        h = heads[viewer]
        shown: dict[str, list[Volume4D]] = {}
        r = c.get("/v1/operations", headers=h)
        assert r.status_code == 200, r.text
        listed = r.json()
        responses[viewer].append(("GET /v1/operations", listed))
        for op in owned:
            r = c.get(f"/v1/operations/{op.id}", headers=h)
            bound = viewer == op.owner or any(viewer in a["parties"] and op.owner in a["parties"] for a in ags)
            if r.status_code == 404:  # the same answer as for an operation that never existed (it echoes the id)
                hidden = r.json()["error"]
                never = c.get(f"/v1/operations/{op.id}-never", headers=h).json()["error"]
                assert (hidden["code"], hidden["message"], hidden["details"]) == (
                    never["code"], never["message"].removesuffix("-never"), never["details"])
            else:
                responses[viewer].append((f"GET /v1/operations/{op.id}", r.json()))
                shown[op.id] = [Volume4D.model_validate(v) for v in r.json()["volumes"]]
            # positive controls: what the agreements allow does arrive
            assert (r.status_code == 200) == bound, (viewer, op.id, r.text)
            assert (op.id in {x["id"] for x in listed}) == bound
            if bound:
                released = set(FIELDS) if viewer == op.owner else {
                    f for a in ags if viewer in a["parties"] and op.owner in a["parties"]
                    and a["sharing"] == "planning_detail" for f, ps in a["released_fields"].items() if viewer in ps}
                text = r.text
                assert all(op.markers[f][-1] in text for f in released), (viewer, op.id, released)
        inbox = c.get("/v1/inbox", headers=h, params={"limit": 1000}).json()
        responses[viewer].append(("GET /v1/inbox", inbox))
        delivery_ids[viewer] = {d["id"] for d in inbox}
        if inbox:
            events = sse_events(f"{env.server.url}/v1/stream", h, len(inbox), timeout=30)
            assert [e["data"]["id"] for e in events] == [d["id"] for d in inbox]
            responses[viewer].append(("GET /v1/stream", [e["data"] for e in events]))
        responses[viewer].append(("GET /v1/parties", c.get("/v1/parties", headers=h).json()))
        responses[viewer].append(("GET /v1/agreements", c.get("/v1/agreements", headers=h).json()))
        geo = c.get("/v1/situation", headers=h, params={"planned": True}).json()
        assert geo["type"] == "FeatureCollection"
        read_tracks(env, viewer, names, h, tracks, owned, ags, responses)
        read_reports_and_ledger(env, viewer, names, heads, sites, owned, inbox, ags, responses)
        hidden = traces(viewer, names, tracks, sites, ags)
        for where, doc in responses[viewer]:
            assert_nothing_withheld(viewer, where, doc, owned, ags, extra=hidden)
        # conflicts: figures derived from what the viewer was shown; proposals only for its own operations
        own = {o.id: o.volumes for o in owned if o.owner == viewer} | {
            k: v for k, v in probes.items() if k.startswith(f"{viewer}-")}
        for where, doc in responses[viewer]:
            for item in (doc if where == "GET /v1/inbox" else [{"payload": doc}] if where.endswith("outcome")
                         else []):
                body = item["payload"]
                if body.get("type") in ("alert", "site_registration"):
                    continue
                assert_conflicts_derived_from_what_was_shown(viewer, where, body["conflicts"], own, shown, ags)
                assert all(r["operation_id"] in own for r in body["resolutions"]), (where, body["resolutions"])
        # the export's geometry is rounded to 1e-7 degrees: compare at that precision
        assert_nothing_withheld(viewer, "GET /v1/situation", geo, owned, ags, digits=7, extra=hidden)

    conflicts = sum(len(doc.get("conflicts", [])) for docs in responses.values() for where, doc in docs
                    if where.endswith("outcome"))
    event(f"conflicts in outcomes: {'none' if not conflicts else 'some'}")
    event(f"coarsened pairs: {'none' if not any(withheld(v, o, ags)[1] for v in names for o in owned) else 'some'}")
    alerts = [d["payload"]["alert"] for docs in responses.values() for where, doc in docs if where == "GET /v1/inbox"
              for d in doc if d["payload"].get("type") == "alert"]
    for kind in ("intrusion", "predicted_conflict", "nonconforming"):
        event(f"{kind} alerts: {'some' if any(a['kind'] == kind for a in alerts) else 'none'}")
    # positive control: an intrusion into the volume of a bound party is told to that party
    ops = {o.id: o for o in owned}
    for fed in tracks:
        if fed.target is not None and ops[fed.target].owner != fed.owner and bound_to(fed.owner, ops[fed.target].owner,
                                                                                     ags):
            inbox = next(doc for where, doc in responses[ops[fed.target].owner] if where == "GET /v1/inbox")
            assert any(d["payload"].get("type") == "alert" and d["payload"]["alert"]["kind"] == "intrusion"
                       and d["payload"]["alert"]["track_id"] == fed.id for d in inbox), (fed, fed.target)

    # webhooks: every delivery is also posted to its party's webhook; wait for all of them, then check them
    wanted = set().union(*delivery_ids.values())
    deadline = time.monotonic() + 30
    while not wanted <= env.receiver.ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wanted <= env.receiver.ids(), "the server did not post every delivery to its webhook"
    with env.receiver.lock:
        bodies = [json.loads(body) for delivery_id, body, _ in env.receiver.received if delivery_id in wanted]
    for body in bodies:
        viewer = body["party_id"]
        assert body["delivery_id"] in delivery_ids[viewer]
        assert_nothing_withheld(viewer, "webhook", body, owned, ags, extra=traces(viewer, names, tracks, sites, ags))

    # the first agreement ends (its parties become the operator and one of its members): the alerts already
    # delivered and the live tracks are read again under the agreements now in force
    if ags and tracks:
        ended = {k: v for k, v in ags[0].items() if k != "coarsening"} | {
            "parties": ["admin", ags[0]["parties"][0]], "released_fields": {}}
        r = c.post("/v1/agreements", headers=env.admin, json=ended)
        assert r.status_code == 201, r.text
        ags[0] = ended
        for viewer in names:
            h, hidden = heads[viewer], traces(viewer, names, tracks, sites, ags)
            inbox = c.get("/v1/inbox", headers=h, params={"limit": 1000}).json()
            assert_nothing_withheld(viewer, "GET /v1/inbox (alerts, an agreement ended)",
                                    [d for d in inbox if d["payload"].get("type") == "alert"], [], ags, extra=hidden)
            assert_nothing_withheld(viewer, "GET /v1/tracks (an agreement ended)",
                                    c.get("/v1/tracks", headers=h).json(), [], ags, extra=hidden)
    PAST.update(names)
    PAST.update(x for t in tracks for x in (t.id, t.callsign))
