"""``forewarn replay``: feed a recorded track file into Forewarn as a party's live feed.

The replay re-enacts the feed: positions go in in time order, in slices of ``--step`` seconds of feed time, paced at
``--speed`` times real time (0: as fast as possible), and the service's clock follows the feed (an alert raised by a
position of 12:00:03 UTC is recorded at 12:00:03 UTC). Conformance, intrusions and predictions run as they would
live; alerts are stored and delivered like any other. Formats: see :mod:`forewarn.tracks.feeds`.
"""

from __future__ import annotations

import time
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
from forewarn.service.compose import open_repository, open_track_store
from forewarn.service.notices import Forewarn
from forewarn.service.settings import load_settings
from forewarn.service.tracking import Tracker
from forewarn.tracks.feeds import FORMATS, read_feed

console = Console(highlight=False, soft_wrap=True)


def replay(
    path: Annotated[Path, typer.Argument(help="track file: own JSON/JSON lines, traffic state vectors (.json[.gz]), "
                                              "CSV, or SBS-1 BaseStation text")],
    party: Annotated[str, typer.Option("--party", help="the party whose assets these are")],
    speed: Annotated[float, typer.Option("--speed", min=0, max=100_000,
                                         help="times real time; 0 = as fast as possible")] = 10.0,
    operation: Annotated[str | None, typer.Option("--operation", help="operation the tracks belong to")] = None,
    source: Annotated[str | None, typer.Option("--source", help="feed name (default: the file name)")] = None,
    fmt: Annotated[str | None, typer.Option("--format",
                                            help=f"one of {', '.join(FORMATS)} (default: detected)")] = None,
    step: Annotated[float, typer.Option("--step", min=0.1, max=3600, help="slice of feed time per ingest (s)")] = 1.0,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite database file")] = None,
) -> None:
    """Replay a track file as PARTY's live feed: quality checks, conformance, intrusions, predicted conflicts."""
    try:
        if not path.is_file():
            raise InvalidInput(f"no such file: {path}")
        if fmt is not None and fmt not in FORMATS:
            raise InvalidInput(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        settings = load_settings(db)
        repo = open_repository(settings)
        service = Forewarn(repo, settings)
        tracker = Tracker(service, open_track_store(repo), settings.track_settings())
        feed = read_feed(path, fmt)
        batch = feed.batch
        order = np.argsort(batch.t_s, kind="stable")
        batch = batch.take(order)
        name = source or path.name.split(".")[0]
        kinds: Counter[str] = Counter()
        reasons: Counter[str] = Counter({"unparsable": len(feed.rejects)} if feed.rejects else {})
        accepted = 0
        started = time.monotonic()
        t0 = float(batch.t_s[0]) if len(batch) else 0.0
        edges = np.searchsorted(batch.t_s, np.arange(t0, float(batch.t_s[-1]) + step, step), side="left") \
            if len(batch) else np.array([0])
        edges = np.unique(np.r_[edges, len(batch)])
        with Progress(TextColumn("[bold]replay[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=False) as progress:
            task = progress.add_task(path.name, total=len(batch))
            for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
                if hi <= lo:
                    continue
                part = batch.take(np.arange(lo, hi))
                feed_t = float(part.t_s[-1])
                if speed > 0:
                    delay = (feed_t - t0) / speed - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)
                result = tracker.ingest(part, party, name, datetime.fromtimestamp(feed_t, tz=UTC), operation)
                accepted += result.accepted
                reasons.update({k: v for k, v in result.counts.items() if k not in ("accepted", "received")})
                kinds.update(a.kind for a in result.alerts)
                progress.advance(task, hi - lo)
        table = Table(title=f"replay of {path.name} as {party} (source {name})")
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("positions read", str(len(batch) + len(feed.rejects)))
        table.add_row("accepted", str(accepted))
        for reason, n in sorted(reasons.items()):
            table.add_row(f"  {reason}", str(n))
        for kind, n in sorted(kinds.items()):
            table.add_row(f"alert {kind}", str(n))
        console.print(table)
    except ForewarnError as exc:
        fail(exc)
