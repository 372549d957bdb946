"""One record must not stall everyone (issue 20): filing latency next to a huge protected site and next to many
large subscriptions of a party bound to nobody.

    python bench/sites.py                                   # this checkout; writes its section of RESULTS.md
    python bench/sites.py --src ../wt-base/src --no-write   # the same run on an older checkout (prints JSON)

What runs: the service on a fresh SQLite file (no HTTP), parties ``rus`` (the filer), ``fra`` and ``ocha`` (bound
to it by one agreement) and ``loner`` (bound to nobody). Phases, each timing ``--filings`` consecutive
``Forewarn.notify`` calls (wall time per filing, ms):

* ``baseline``: nothing else stored;
* ``huge site``: ocha registers a site of ``--huge-vertices`` vertices with a 100 km buffer (refused now: the
  answer is recorded) and, if refused, the largest site the volume limits allow (``max_vertices`` vertices, 100 km
  buffer); strike-area filings 50 km from it (each meets its buffer);
* ``subscriptions``: loner holds ``--subscriptions`` subscriptions of ``max_vertices`` vertices each (the per-party
  cap raised to allow them); transport filings inside them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import BENCH_DIR, git, host_info, write_section

T0 = datetime(2030, 1, 1, tzinfo=UTC)
NOW = T0 - timedelta(hours=3)


def ring(n: int, lon: float, lat: float, radius_deg: float) -> list[tuple[float, float]]:
    return [(lon + radius_deg * math.cos(2 * math.pi * k / n), lat + radius_deg * math.sin(2 * math.pi * k / n))
            for k in range(n)]


def volume(lon: float, lat: float, radius_m: float) -> Any:
    from forewarn.geo.volume import Volume4D

    return Volume4D.model_validate({"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m},
                                    "lower_m": 1000, "upper_m": 5000, "start": T0 + timedelta(hours=1),
                                    "end": T0 + timedelta(hours=3)})


def service(db: Path, subscriptions: int) -> Any:
    from forewarn.core.model import Agreement, Party
    from forewarn.service.notices import Forewarn
    from forewarn.service.settings import Settings
    from forewarn.store import SQLiteRepository

    extra = {"max_subscriptions_per_party": subscriptions} if "max_subscriptions_per_party" in Settings.model_fields \
        else {}
    svc = Forewarn(SQLiteRepository(db), Settings(db=db, **extra))
    for pid in ("rus", "fra", "ocha", "loner"):
        svc.put_party(Party(id=pid, name=pid.upper()))
    svc.put_agreement(Agreement(id="mou", name="MoU", parties=["rus", "fra", "ocha"]), NOW)
    return svc


def time_filings(svc: Any, prefix: str, n: int, cls: str, lon: float, lat: float) -> list[float]:
    from forewarn.core.model import Operation

    out = []
    for k in range(n):
        op = Operation(id=f"{prefix}-{k}", party_id="rus", activity_class=cls, state="notified",
                       volumes=[volume(lon + 0.01 * k, lat, 3000)])
        t = time.perf_counter()
        svc.notify(op, NOW + timedelta(seconds=k))
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, Any]:
    return {"filings": len(ms), "median_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1),
            "first_ms": round(ms[0], 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from forewarn.core.model import ProtectedSite, Subscription

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        svc = service(Path(tmp) / "a.sqlite", args.subscriptions)
        out["baseline"] = summary(time_filings(svc, "base", args.filings, "strike_area", 38.9, 35.0))
        limit = svc.settings.max_vertices
        huge = ProtectedSite(id="huge", name="huge", registered_by="ocha", polygon=ring(args.huge_vertices, 38.0,
                                                                                           35.0, 0.05),
                             buffer_m=100_000)
        t = time.perf_counter()
        try:
            svc.register_site(huge, NOW)
            out["huge_site_answer"] = f"accepted in {(time.perf_counter() - t) * 1000:.0f} ms"
            size = args.huge_vertices
        except Exception as exc:  # the answer (a refusal) is what is measured
            out["huge_site_answer"] = f"refused in {(time.perf_counter() - t) * 1000:.0f} ms: " \
                                      f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
            size = limit
            t = time.perf_counter()
            svc.register_site(huge.model_copy(update={"polygon": ring(limit, 38.0, 35.0, 0.05)}), NOW)
            out["largest_site_registered_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out["site_vertices"] = size
        out["site"] = summary(time_filings(svc, "site", args.filings, "strike_area", 38.6, 35.0))
    with tempfile.TemporaryDirectory() as tmp:
        svc = service(Path(tmp) / "b.sqlite", args.subscriptions)
        vertices = svc.settings.max_vertices
        t = time.perf_counter()
        with svc.repo.transaction():  # stored directly: the "before" checkout has no subscription use case
            for k in range(args.subscriptions):
                svc.repo.put_subscription(Subscription(id=f"s{k}", party_id="loner", volume=volume(38.0, 35.0, 1)
                                                       .model_copy(update={"footprint": _polygon(vertices, k)})))
        out["subscriptions_stored_s"] = round(time.perf_counter() - t, 1)
        out["subscription_vertices"] = vertices
        out["subscriptions"] = summary(time_filings(svc, "sub", args.filings, "transport", 38.0, 35.0))
    return out


def _polygon(n: int, k: int) -> Any:
    from forewarn.geo.volume import PolygonFootprint

    return PolygonFootprint(coordinates=ring(n, 38.0, 35.0, 0.3 + 0.0001 * k))


def section(result: dict[str, Any], before: dict[str, Any] | None, args: argparse.Namespace) -> str:
    def row(name: str, key: str, r: dict[str, Any]) -> str:
        s = r[key]
        return f"| {name} | {s['filings']} | {s['first_ms']} | {s['median_ms']} | {s['max_ms']} |"

    lines = [
        "## Huge sites and subscriptions (bench/sites.py)", "",
        f"`python bench/sites.py --filings {args.filings}` at {git('rev-parse', '--short', 'HEAD')} "
        f"({result['host']['date']}, {result['host']['nproc']} cores, a shared machine: other work was running). "
        "Wall time of one `Forewarn.notify` (SQLite, no HTTP).", "",
        f"A site of {args.huge_vertices:,} vertices with a 100 km buffer: {result['huge_site_answer']}. "
        f"Registering the largest allowed site took {result.get('largest_site_registered_ms', '-')} ms (its buffer "
        "is computed there, outside the writer lock, once per version of the site).", "",
        "| filings next to | filings | first ms | median ms | max ms |", "|---|---|---|---|---|",
        row("nothing", "baseline", result),
        row(f"one site of {result['site_vertices']:,} vertices, 100 km buffer", "site", result),
        row(f"{args.subscriptions} subscriptions of {result['subscription_vertices']:,} vertices, unbound party",
            "subscriptions", result),
    ]
    if before is not None:
        lines += ["", "Before (`python bench/sites.py --src <main>/src --filings 5 --huge-vertices 10000 --no-write` "
                  "on main at 4afc40f, JSON in bench/results/sites-before.json; its site of "
                  f"{before['site_vertices']:,} vertices was accepted):", "",
                  "| filings next to | filings | first ms | median ms | max ms |", "|---|---|---|---|---|",
                  row("nothing", "baseline", before),
                  row(f"one site of {before['site_vertices']:,} vertices, 100 km buffer", "site", before),
                  row(f"{args.subscriptions} subscriptions of {before['subscription_vertices']:,} vertices, "
                      "unbound party", "subscriptions", before)]
    lines += ["", "Issue 20's figures before: ~81 s per filing next to a 100,000-vertex site with a 100 km buffer; "
              "4 ms -> 2.4 s per filing with 231 subscriptions of 5,000 vertices from a party bound to nobody."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(BENCH_DIR.parent / "src"), help="the src/ to import forewarn from")
    parser.add_argument("--filings", type=int, default=10)
    parser.add_argument("--huge-vertices", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=231)
    parser.add_argument("--before", type=Path, help="JSON printed by a --no-write run on an older checkout")
    parser.add_argument("--no-write", action="store_true", help="print JSON only, leave RESULTS.md alone")
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    result = run(args) | {"host": host_info({})}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        before = json.loads(args.before.read_text()) if args.before else None
        write_section(BENCH_DIR / "RESULTS.md", "## Huge sites and subscriptions (bench/sites.py)",
                      section(result, before, args))


if __name__ == "__main__":
    main()
