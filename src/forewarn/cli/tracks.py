"""``forewarn replay``: feed a recorded track file into Forewarn as a party's live feed.

The replay re-enacts the feed: positions go in in time order, in slices of ``--step`` seconds of feed time, paced at
``--speed`` times real time (0: as fast as possible), and the service's clock follows the feed (an alert raised by a
position of 12:00:03 UTC is recorded at 12:00:03 UTC). Conformance, intrusions and predictions run as they would
live; alerts are stored and delivered like any other. Formats: see :mod:`forewarn.tracks.feeds`.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from forewarn.cli.errors import fail
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.service.compose import build_service, build_tracker
from forewarn.service.settings import load_settings
from forewarn.service.tracking import Tracker
from forewarn.tracks.feeds import FORMATS
from forewarn.tracks.feeds.time_order import FeedSummary, TimeOrderedFeeds

console = Console(highlight=False, soft_wrap=True)


def _read(feeds: TimeOrderedFeeds, path: Path, fmt: str | None) -> FeedSummary:
    """Read a whole feed file into ``feeds`` (streaming); an unreadable, undetectable or position-less file is
    invalid input."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    try:
        summary = feeds.read(path, fmt)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeError) as exc:
        raise InvalidInput(f"cannot read {path.name} as a track feed: {exc}", {"file": str(path)}) from exc
    if not summary.timed:
        why = summary.rejects[0].reason if summary.rejects else (
            "no records" if not summary.positions else "no record has the fields of a position with a time")
        raise InvalidInput(f"no position in {path.name} ({summary.format}): {why}", {"file": str(path)})
    return summary


def _feeds(path: Path | None, party: str | None, extra: list[str]) -> list[tuple[str, Path]]:
    """(party, file) of ``FILE --party P`` and of every ``--feed P=FILE``."""
    out: list[tuple[str, Path]] = []
    if path is not None:
        if not party:
            raise InvalidInput("FILE needs --party (or give --feed PARTY=FILE)")
        out.append((party, path))
    for item in extra:
        who, sep, name = item.partition("=")
        if not sep or not who or not name:
            raise InvalidInput(f"--feed takes PARTY=FILE, not {item!r}")
        out.append((who, Path(name)))
    if not out:
        raise InvalidInput("nothing to replay: give FILE --party P or --feed PARTY=FILE")
    return out


def replay(
    path: Annotated[Path | None, typer.Argument(help="track file: own JSON/JSON lines, traffic state vectors "
                                                     "(.json[.gz]), CSV, or SBS-1 BaseStation text")] = None,
    party: Annotated[str | None, typer.Option("--party", help="the party whose assets FILE's are")] = None,
    feed_opt: Annotated[list[str] | None, typer.Option(
        "--feed", help="PARTY=FILE, repeatable: several parties' recordings replayed together into one tracker "
                       "(conflicts between them are predicted)")] = None,
    speed: Annotated[float, typer.Option("--speed", min=0, max=100_000,
                                         help="times real time; 0 = as fast as possible")] = 10.0,
    operation: Annotated[str | None, typer.Option("--operation", help="operation the tracks belong to")] = None,
    source: Annotated[str | None, typer.Option("--source", help="feed name (default: the file name)")] = None,
    fmt: Annotated[str | None, typer.Option("--format",
                                            help=f"one of {', '.join(FORMATS)} (default: detected)")] = None,
    step: Annotated[float, typer.Option("--step", min=0.1, max=3600, help="slice of feed time per ingest (s)")] = 1.0,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite database file")] = None,
) -> None:
    """Replay track files as their parties' live feeds: quality checks, conformance, intrusions, predicted
    conflicts (between the parties too, when several files are given)."""
    try:
        if fmt is not None and fmt not in FORMATS:
            raise InvalidInput(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        feeds = _feeds(path, party, feed_opt or [])
        with TimeOrderedFeeds() as ordered:
            summaries = [(who, _read(ordered, file, fmt)) for who, file in feeds]  # all checked before any is fed
            settings = load_settings(db)
            tracker = build_tracker(build_service(settings))
            tally = _feed(tracker, ordered, summaries, source, operation, speed, step)
        unparsable = sum(f.unparsable for _, f in summaries)
        console.print(_summary(tally.title, len(ordered) + unparsable, tally.accepted, unparsable, tally.reasons,
                               tally.kinds))
    except ForewarnError as exc:
        fail(exc)


@dataclass
class _Tally:
    """What a replay did: positions accepted, rejections per reason, alerts per kind."""

    title: str
    accepted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)


def _feed(tracker: Tracker, ordered: TimeOrderedFeeds, summaries: list[tuple[str, FeedSummary]],
          source: str | None, operation: str | None, speed: float, step: float) -> _Tally:
    """Feed the positions read into the tracker in slices of ``step`` seconds of feed time, paced at ``speed``
    times real time (0: as fast as possible), each slice one ingest per file."""
    names = [source or f.path.name.split(".")[0] for _, f in summaries]
    tally = _Tally(", ".join(f"{f.path.name} as {who}" for who, f in summaries))
    started = time.monotonic()
    with Progress(TextColumn("[bold]replay[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task(tally.title, total=len(ordered))
        for feed_t, batch, feed_of in ordered.slices(step):
            if speed > 0:
                delay = (feed_t - ordered.t_min) / speed - (time.monotonic() - started)
                if delay > 0:
                    time.sleep(delay)
            for k in np.unique(feed_of).tolist():
                part = batch.take(np.flatnonzero(feed_of == k))
                result = tracker.ingest(part, summaries[k][0], names[k], datetime.fromtimestamp(feed_t, tz=UTC),
                                        operation)
                tally.accepted += result.accepted
                tally.reasons.update({r: v for r, v in result.counts.items() if r.startswith("rejected:")})
                tally.kinds.update(a.kind for a in result.alerts)
            progress.advance(task, len(batch))
    return tally


def _summary(title: str, read: int, accepted: int, unparsable: int, reasons: Counter[str],
             kinds: Counter[str]) -> Table:
    """The replay's summary: positions read, accepted, rejected (per reason), alerts raised (per kind)."""
    table = Table(title=f"replay of {title}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("positions read", str(read))
    table.add_row("accepted", str(accepted))
    table.add_row("rejected", str(read - accepted))
    if unparsable:
        table.add_row("  unparsable", str(unparsable))
    for reason, n in sorted(reasons.items()):
        table.add_row(f"  {reason.removeprefix('rejected:')}", str(n))
    table.add_row("alerts raised", str(sum(kinds.values())))
    for kind, n in sorted(kinds.items()):
        table.add_row(f"  {kind}", str(n))
    return table
