"""Readable rendering (rich) of notices and their outcomes, for the CLI."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from forewarn.cli.terminal import cell, escaped
from forewarn.core.conflicts import Conflict
from forewarn.core.model import Agreement, Operation, Party
from forewarn.core.records import NoticeOutcome
from forewarn.geo.volume import Volume4D
from forewarn.units import FOOT_M, m_to_fl


def hm(seconds: float) -> str:
    """A duration in seconds as '2 h 05 min' (sign kept)."""
    sign = "-" if seconds < 0 else ""
    minutes = round(abs(seconds) / 60)
    h, m = divmod(minutes, 60)
    return f"{sign}{h} h {m:02d} min" if h else f"{sign}{m} min"


def when(t: datetime) -> str:
    """A UTC time as '17 Nov 03:00Z'."""
    return t.strftime("%d %b %H:%MZ")


def band(v: Volume4D) -> str:
    """An altitude band in metres with flight levels."""
    return f"{v.lower_m:,.0f}-{v.upper_m:,.0f} m (FL{m_to_fl(v.lower_m):03.0f}-FL{m_to_fl(v.upper_m):03.0f})"


def parties_table(parties: list[Party]) -> Table:
    """The parties (names escaped: :func:`forewarn.cli.terminal.escaped`)."""
    table = Table(title="Parties", title_justify="left")
    for col in ("id", "name", "kind"):
        table.add_column(col)
    for p in parties:
        table.add_row(cell(p.id), cell(p.name), cell(p.kind))
    return table


def agreements_table(agreements: list[Agreement]) -> Group:
    """The agreements, one block each (readable at 80 columns: nothing is cut): id and parties, then the lead
    time, acknowledgement deadline, separation minima (metres, with feet), priority rule and sharing level."""
    lines: list[Text] = [Text("Agreements", style="italic")]
    for a in agreements:
        m = a.default_minima
        priority = a.priority.rule + (f" ({' > '.join(a.priority.ranking)})" if a.priority.ranking else "")
        lines.append(Text.assemble((escaped(a.id), "bold"), f"  between {escaped(', '.join(a.parties))}"))
        lines.append(Text(f"    minimum notice {hm(a.min_notice_s)}; acknowledge within {hm(a.ack_deadline_s)}"))
        lines.append(Text(f"    separation minima: {m.horizontal_m:,.0f} m horizontal, {m.vertical_m:,.1f} m "
                          f"({m.vertical_m / FOOT_M:,.0f} ft) vertical, {hm(m.time_s)} in time"))
        lines.append(Text(f"    priority: {priority}; sharing: {a.sharing.value}"))
    return Group(*lines)


def where_when(op: Operation) -> str:
    """Where and when an operation's volumes are: the lon/lat bounds of their footprints (WGS84 degrees), the
    altitude band (metres above the WGS84 ellipsoid, with flight levels) and the time window (UTC)."""
    lo = min(v.lower_m for v in op.volumes)
    hi = max(v.upper_m for v in op.volumes)
    start = min(v.start for v in op.volumes)
    end = max(v.end for v in op.volumes)
    bounds = [v.shape.bounds for v in op.volumes]
    w, s_, e, n = (min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds),
                   max(b[3] for b in bounds))
    return (f"within {_lon(w)}-{_lon(e)} {_lat(s_)}-{_lat(n)}, {lo:,.0f}-{hi:,.0f} m "
            f"(FL{m_to_fl(lo):03.0f}-FL{m_to_fl(hi):03.0f}), {when(start)} to {when(end)}")


def _lon(x: float) -> str:
    return f"{abs(x):.2f}{'E' if x >= 0 else 'W'}"


def _lat(y: float) -> str:
    return f"{abs(y):.2f}{'N' if y >= 0 else 'S'}"


def _side(c: Conflict, which: str, ops: dict[str, Operation]) -> str:
    ref = c.a if which == "a" else c.b
    op = ops.get(ref.operation_id)
    if op is None or ref.volume_index >= len(op.volumes):
        return f"{ref.operation_id} #{ref.volume_index} ({ref.party_id}, {ref.activity_class})"
    v = op.volumes[ref.volume_index]
    return (f"{ref.operation_id} #{ref.volume_index} ({ref.party_id}, {ref.activity_class}, "
            f"{v.footprint.kind}, {band(v)}, {v.start:%H:%M}-{v.end:%H:%MZ})")


def print_outcome(console: Console, outcome: NoticeOutcome, ops: dict[str, Operation],
                  names: dict[str, str]) -> None:
    """Print one notice (or check) outcome: where and when, lead times, impacts (and the parties told nothing),
    conflicts, resolutions, site warnings."""
    op = ops.get(outcome.operation_id)
    if op is not None and op.volumes:
        console.print(Text(f"    {where_when(op)}", style="dim"))
    for lt in outcome.lead_times:
        style = "red" if lt.late else "green"
        console.print(Text(f"    lead time {hm(lt.lead_time_s)} against minimum {hm(lt.min_notice_s)} "
                           f"({lt.agreement_id}): {'LATE' if lt.late else 'in time'}", style=style))
    for imp in outcome.impacts:
        style = "yellow" if imp.affected else "green"
        console.print(Text(f"    -> {names.get(imp.party_id, imp.party_id)}: {imp.message}", style=style))
    told = {imp.party_id for imp in outcome.impacts} | {outcome.party_id}
    for party_id in sorted(set(names) - told):
        console.print(Text(f"    -> {names[party_id]}: bound by no agreement with "
                           f"{names.get(outcome.party_id, outcome.party_id)}: told nothing", style="dim"))
    for c in outcome.conflicts:
        o, s = c.overlap, c.separation
        alt = (f"altitude overlap {o.altitude_overlap_m:,.0f} m" if o.altitude_overlap_m >= 0
               else f"altitude gap {-o.altitude_overlap_m:,.0f} m")
        span = f"time overlap {hm(o.time_overlap_s)}" if o.time_overlap_s >= 0 else f"{hm(-o.time_overlap_s)} apart"
        console.print(Text("    CONFLICT", style="bold red"), Text(f"under {c.agreement_id}"))
        console.print(f"      {_side(c, 'a', ops)}")
        console.print(f"      x {_side(c, 'b', ops)}")
        console.print(
            f"      overlap: {o.area_km2:,.1f} km2 around {o.point[0]:.3f}E {o.point[1]:.3f}N; {alt}; {span}"
        )
        console.print(
            f"      separation found: {s.horizontal_m:,.0f} m horizontal, {s.vertical_m:,.0f} m vertical, "
            f"{hm(s.time_s)} apart; minima {c.minima.horizontal_m:,.0f} m / {c.minima.vertical_m:,.0f} m / "
            f"{hm(c.minima.time_s)}"
        )
        console.print(f"      priority: {c.priority_reason}; [bold]{c.adjusting_operation}[/] is asked to adjust "
                      f"(both sides are told)")
    for r in outcome.resolutions:
        here = sum(1 for c in outcome.conflicts if r.operation_id in (c.a.operation_id, c.b.operation_id))
        earlier = (f": the {here} found now and {r.conflicts_cleared - here} found by earlier notices"
                   if r.conflicts_cleared > here else "")
        console.print(f"    proposed for [bold]{r.operation_id}[/] (clears {r.conflicts_cleared} conflict(s){earlier}, "
                      "each verified by re-running detection):")
        for opt in r.options:
            console.print(f"      - {opt.description}")
        for missing in r.not_found:
            console.print(Text(f"      - {missing}", style="dim"))
    for w in outcome.site_warnings:
        console.print(Text(
            f"    PROTECTED SITE: {w.site_name} ({w.category}, buffer {w.buffer_m:,.0f} m) is "
            f"{'inside' if w.distance_m == 0 else f'{w.distance_m:,.0f} m from'} volume #{w.volume_index} of "
            f"{w.operation_id}: warning to {w.party_id} and {w.registered_by}", style="bold magenta"))
