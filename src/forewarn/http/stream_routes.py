"""The event stream (``GET /v1/stream``) and the token endpoint (``POST /v1/token``): the two routes a careless
or hostile client can hurt others through, with their limits (docs/resilience.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from forewarn.core.policy import view_delivery
from forewarn.core.records import Delivery
from forewarn.errors import InvalidInput
from forewarn.http.deps import RT, Caller
from forewarn.http.limits import too_many
from forewarn.http.runtime import Runtime

router = APIRouter(prefix="/v1")

STREAM_RETRY_AFTER_S = 5.0
"""What a stream refused for the per-party limit is told to wait."""


def _page(rt: Runtime, party_id: str, after: int, channel: str, size: int) -> tuple[list[Delivery], bytes]:
    """One page of a replay, read and rendered off the event loop: the deliveries and their events."""
    batch = rt.desk.inbox(party_id, after, channel, size)
    return batch, _render(rt, party_id, batch)


def _render(rt: Runtime, party_id: str, batch: list[Delivery]) -> bytes:
    out = bytearray()
    book = rt.service.airspace.book
    for d in batch:
        shown = view_delivery(party_id, d, book)
        if shown is not None:  # always: the inbox holds only the caller's deliveries
            out += f"id: {d.seq}\nevent: {d.payload.get('type', 'notice')}\ndata: ".encode()
            out += shown.model_dump_json().encode() + b"\n\n"  # compact JSON: one line
    return bytes(out)


async def _events(rt: Runtime, party_id: str, channel: str, after: int, release: Callable[[], None]
                  ) -> AsyncIterator[bytes]:
    """The stream: the backlog in pages of ``stream_page`` (read and rendered in the hub's few replay threads, so
    replays never take the threads other requests need and never hold more than a page per stream), then the
    live tail from the hub."""
    entry = rt.hub.register(party_id)
    page_size = rt.settings.stream_page
    synced: int | None = None  # every delivery up to this sequence number has been read (None: unknown)
    try:
        yield b": connected\n\n"
        # no disconnect check per pass: the StreamingResponse listens for the client's disconnect and cancels
        # this generator (its finally unregisters it); a write to a closed connection fails too
        while True:
            # clear before reading: a delivery committed after the read sets it again (no lost wake-up)
            entry[1].clear()
            # the hub's in-memory tail when it provably holds everything after what this stream has read;
            # else the table (the first pass, after a reconnection with Last-Event-ID, after a gap)
            tail = rt.hub.since(party_id, after, synced, channel)
            if tail is not None:
                batch, synced = tail
                data = _render(rt, party_id, batch)
            else:
                position = rt.hub.position()
                batch, data = await anyio.to_thread.run_sync(_page, rt, party_id, after, channel, page_size,
                                                             limiter=rt.hub.replay_limiter())
                synced = position if len(batch) < page_size else None
            if data:
                yield data
            now = rt.clock()
            for d in batch:
                rt.desk.note_streamed(d, now)
            if batch:
                after = batch[-1].seq
                continue
            try:
                await asyncio.wait_for(entry[1].wait(), timeout=15.0)
            except TimeoutError:
                yield b": keep-alive\n\n"
    finally:
        rt.hub.unregister(entry)
        release()


@router.get("/stream", tags=["deliveries"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       429: {"description": "the party has stream_max_per_party streams open"}})
async def stream(
    request: Request, rt: RT, who: Caller,
    channel: Annotated[str, Query(pattern="^(primary|backup)$")] = "primary",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """Server-sent events: your deliveries on ``channel``; reconnect with Last-Event-ID to miss nothing. A party
    may hold ``stream_max_per_party`` streams at once; one more is refused with 429 and ``Retry-After``."""
    who.require("read")
    try:
        after = int(last_event_id) if last_event_id else 0
    except ValueError:
        after = -1
    if not 0 <= after <= 2**62:
        raise InvalidInput("Last-Event-ID must be the sequence number of the last event received")
    limit = rt.settings.stream_max_per_party
    release = rt.hub.open_stream(who.party_id, limit)
    if release is None:
        return too_many(request, f"party {who.party_id} already has {limit} event streams open "
                        "(setting stream_max_per_party)", STREAM_RETRY_AFTER_S, {"limit": limit})
    # released when the stream ends, or after the response if the stream never started (early disconnect)
    return StreamingResponse(_events(rt, who.party_id, channel, after, release), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                             background=BackgroundTask(release))
