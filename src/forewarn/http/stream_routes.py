"""The event stream (``GET /v1/stream``) and the token endpoint (``POST /v1/token``): the two routes a careless
or hostile client can hurt others through, with their limits (docs/resilience.md)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from forewarn.core.credentials import Credential, Principal, admit, check_scopes
from forewarn.core.policy import view_delivery
from forewarn.core.records import Delivery
from forewarn.errors import InvalidInput, Unauthenticated
from forewarn.http.deps import RT, Caller
from forewarn.http.limits import FailureLimiter, too_many
from forewarn.http.runtime import Runtime
from forewarn.http.schemas import TokenOut
from forewarn.service.ledger import Draft

router = APIRouter(prefix="/v1")

KEEP_ALIVE_S = 15.0
"""An idle event stream gets a comment this often (seconds), so proxies and clients keep the connection."""

STREAM_RETRY_AFTER_S = 5.0
"""What a stream refused for the per-party limit is told to wait."""


def event_stream(content: AsyncIterator[bytes], background: BackgroundTask | None = None) -> EventSourceResponse:
    """A server-sent event stream (sse-starlette: framing, keep-alive comments every :data:`KEEP_ALIVE_S`, the
    client's disconnect ends the generator), uncached and unbuffered by proxies."""
    return EventSourceResponse(content, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                               background=background, ping=KEEP_ALIVE_S, sep="\n",
                               ping_message_factory=lambda: ServerSentEvent(comment="keep-alive", sep="\n"))


def _page(rt: Runtime, party_id: str, after: int, channel: str, size: int) -> tuple[int, int, list[Delivery], bytes]:
    """One page of a replay, read and rendered off the event loop: how many deliveries it holds, the last one's
    sequence number, those not yet delivered (their send is noted once written) and the events. The deliveries
    themselves are dropped here: a stream keeps only the rendered bytes of its page."""
    batch = rt.desk.inbox(party_id, after, channel, size)
    last = batch[-1].seq if batch else after
    return len(batch), last, [d for d in batch if d.delivered_at is None], _render(rt, party_id, batch)


def _render(rt: Runtime, party_id: str, batch: list[Delivery]) -> bytes:
    out = bytearray()
    book = rt.service.airspace.book
    for d in batch:
        shown = view_delivery(party_id, d, book)
        if shown is not None:  # always: the inbox holds only the caller's deliveries
            out += ServerSentEvent(data=shown.model_dump_json(), event=str(d.payload.get("type", "notice")),
                                   id=str(d.seq), sep="\n").encode()  # compact JSON: one data line
    return bytes(out)


async def _events(rt: Runtime, who: Principal, channel: str, after: int, release: Callable[[], None]
                  ) -> AsyncIterator[bytes]:
    """The stream: the backlog in pages of ``stream_page`` (read and rendered in the hub's few replay threads, so
    replays never take the threads other requests need and never hold more than a page per stream), then the
    live tail from the hub. Before each pass the caller's token is checked against the store again (party
    disabled? credentials revoked?): a revoked stream ends instead of sending anything more."""
    party_id = who.party_id
    entry = rt.hub.register(party_id)
    page_size = rt.settings.stream_page
    synced: int | None = None  # every delivery up to this sequence number has been read (None: unknown)
    try:
        yield ServerSentEvent(comment="connected", sep="\n").encode()
        # no disconnect check per pass: the EventSourceResponse listens for the client's disconnect and cancels
        # this generator (its finally unregisters it); a write to a closed connection fails too
        while True:
            # clear before reading: a delivery committed after the read sets it again (no lost wake-up)
            entry[1].clear()
            try:
                admit(who, rt.service.party_access(party_id))
            except Unauthenticated:
                return
            # the hub's in-memory tail when it provably holds everything after what this stream has read;
            # else the table (the first pass, after a reconnection with Last-Event-ID, after a gap)
            tail = rt.hub.since(party_id, after, synced, channel)
            if tail is not None:
                batch, synced = tail
                count, last, unsent, data = len(batch), (batch[-1].seq if batch else after), batch, \
                    _render(rt, party_id, batch)
            else:
                position = rt.hub.position()
                count, last, unsent, data = await anyio.to_thread.run_sync(
                    _page, rt, party_id, after, channel, page_size, limiter=rt.hub.replay_limiter())
                synced = position if count < page_size else None
            if data:
                yield data
            del data
            now = rt.clock()
            for d in unsent:
                rt.desk.note_streamed(d, now)
            if count:
                after = last
                continue
            await entry[1].wait()  # the response sends a keep-alive comment every KEEP_ALIVE_S meanwhile
    finally:
        rt.hub.unregister(entry)
        release()


@router.get("/stream", tags=["deliveries"], response_class=EventSourceResponse,
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
    return event_stream(_events(rt, who, channel, after, release), background=BackgroundTask(release))


# ---------------------------------------------------------------------------------------------- the token endpoint
def _guard(request: Request, rt: Runtime) -> FailureLimiter:
    guard: FailureLimiter | None = getattr(request.app.state, "token_guard", None)
    if guard is None:
        guard = FailureLimiter(rt.settings.token_max_failures, rt.settings.token_failure_window_s)
        request.app.state.token_guard = guard
    return guard


def _check_secret(rt: Runtime, client_id: str, client_secret: str) -> Credential | None:
    """The unrevoked credentials of ``client_id`` if the secret matches; one scrypt whatever the outcome."""
    return rt.service.client_credential(client_id, client_secret)


def _record_failure(rt: Runtime, guard: FailureLimiter, keys: list[str], client_id: str, address: str) -> None:
    """Count the failure for each key; the first failure of a window and the one that locks a key are written to
    the ledger as a ``rejection`` (so a flood adds at most two entries per key and window)."""
    now, mono = rt.clock(), time.monotonic()
    drafts = []
    for key in keys:
        window = guard.fail(key, mono)
        if window.failures in (1, guard.max_failures):
            drafts.append(Draft("rejection", "token", {
                "code": "unauthenticated", "path": "/v1/token", "limited": key.split(":", 1)[0],
                "client_id": client_id, "address": address, "failures_in_window": window.failures,
                "refused_in_window": window.refused, "window_s": guard.window_s,
                "locked": window.failures >= guard.max_failures}))
    rt.service.record_rejections(drafts, now)


@router.post("/token", response_model=TokenOut, tags=["auth"],
             responses={429: {"description": "too many failed secrets for this client id or source address"}})
async def token(
    request: Request, rt: RT,
    grant_type: Annotated[str, Form(pattern="^client_credentials$", examples=["client_credentials"])],
    client_id: Annotated[str, Form(min_length=1, max_length=200, examples=["YOUR_CLIENT_ID"])],
    client_secret: Annotated[str, Form(min_length=1, max_length=200, examples=["YOUR_CLIENT_SECRET"])],
    scope: Annotated[str | None, Form(max_length=200, examples=["notices:file read ack"])] = None,
) -> Any:
    """OAuth2 client credentials: a bearer token for the party of these credentials. After
    ``token_max_failures`` wrong secrets in ``token_failure_window_s`` for one client id, or from one source
    address, further attempts get 429 with ``Retry-After`` until the window ends."""
    guard = _guard(request, rt)
    address = request.client.host if request.client else "unknown"
    keys = [f"client:{client_id}", f"address:{address}"]
    wait = max(guard.blocked_for(k, time.monotonic()) for k in keys)
    if wait > 0:
        return too_many(request, "too many failed attempts for this client id or from this address", wait)
    cred = await run_in_threadpool(_check_secret, rt, client_id, client_secret)
    if cred is None:
        await run_in_threadpool(_record_failure, rt, guard, keys, client_id, address)
        raise Unauthenticated("unknown client or wrong secret")
    guard.succeed(keys[0])
    state = rt.service.party_access(cred.party_id)
    if state is None or state.disabled_at is not None:
        raise Unauthenticated(f"party {cred.party_id} is disabled: its credentials get no token")
    scopes = list(cred.scopes)
    if scope:
        wanted = check_scopes(scope.split())
        if not set(wanted) <= set(cred.scopes):
            raise Unauthenticated("the credentials do not grant the scopes asked for")
        scopes = list(wanted)
    access, ttl = rt.token_for(cred.party_id, scopes, cred.client_id)
    return TokenOut(access_token=access, expires_in=ttl, scope=" ".join(scopes))
