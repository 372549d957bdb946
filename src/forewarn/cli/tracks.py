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
from forewarn.tracks.feeds import FORMATS, FeedResult, read_feed
from forewarn.tracks.model import PositionBatch

console = Console(highlight=False, soft_wrap=True)


def _load(path: Path, fmt: str | None) -> FeedResult:
    """Parse a whole feed file; an unreadable, undetectable or position-less file is invalid input."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    try:
        feed = read_feed(path, fmt)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeError) as exc:
        raise InvalidInput(f"cannot read {path.name} as a track feed: {exc}", {"file": str(path)}) from exc
    timed = np.isfinite(np.asarray(feed.batch.t_s, dtype=float))
    if not timed.any():
        why = feed.rejects[0].reason if feed.rejects else ("no records" if not len(feed.batch) else
                                                           "no record has the fields of a position with a time")
        raise InvalidInput(f"no position in {path.name} ({feed.format}): {why}", {"file": str(path)})
    return feed


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
        loaded = [(who, file, _load(file, fmt)) for who, file in feeds]  # every file checked before any is fed
        settings = load_settings(db)
        tracker = build_tracker(build_service(settings))
        names = [source or file.name.split(".")[0] for _, file, _ in loaded]
        batch = PositionBatch.concat([f.batch for _, _, f in loaded])
        feed_of = np.concatenate([np.full(len(f.batch), k) for k, (_, _, f) in enumerate(loaded)])
        order = np.argsort(batch.t_s, kind="stable")
        batch, feed_of = batch.take(order), feed_of[order]
        kinds: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        unparsable = sum(len(f.rejects) for _, _, f in loaded)
        accepted = 0
        started = time.monotonic()
        t0, t_end = float(np.nanmin(batch.t_s)), float(np.nanmax(batch.t_s))  # untimed rows sort last
        edges = np.searchsorted(batch.t_s, np.arange(t0, t_end + step, step), side="left")
        edges = np.unique(np.r_[edges, len(batch)])
        title = ", ".join(f"{file.name} as {who}" for who, file, _ in loaded)
        with Progress(TextColumn("[bold]replay[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=False) as progress:
            task = progress.add_task(title, total=len(batch))
            for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
                if hi <= lo:
                    continue
                feed_t = float(np.nanmax(batch.t_s[lo:hi])) if np.isfinite(batch.t_s[lo:hi]).any() else t_end
                if speed > 0:
                    delay = (feed_t - t0) / speed - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)
                for k in np.unique(feed_of[lo:hi]).tolist():
                    part = batch.take(lo + np.flatnonzero(feed_of[lo:hi] == k))
                    result = tracker.ingest(part, loaded[k][0], names[k], datetime.fromtimestamp(feed_t, tz=UTC),
                                            operation)
                    accepted += result.accepted
                    reasons.update({r: v for r, v in result.counts.items() if r.startswith("rejected:")})
                    kinds.update(a.kind for a in result.alerts)
                progress.advance(task, hi - lo)
        console.print(_summary(title, len(batch) + unparsable, accepted, unparsable, reasons, kinds))
    except ForewarnError as exc:
        fail(exc)


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
