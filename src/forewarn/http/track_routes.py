"""Routes of live tracks (``/v1/tracks``): feed positions (HTTP batch or WebSocket), read the tracks a party may
see, the feed-quality counters, and a server-sent event stream of moving tracks.

Positions are Forewarn's own JSON (see :mod:`forewarn.tracks.feeds`): a JSON array or JSON lines of objects with
``track_id``, ``t_s`` (POSIX seconds UTC) or ``time`` (ISO 8601 UTC), ``lat_deg``/``lon_deg`` (WGS84), ``alt_m``,
``gs_mps``, ``track_deg``, ``vs_mps``, ``callsign``. A party feeds only its own tracks (the token's party).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from forewarn.core.airspace import AgreementBook
from forewarn.core.credentials import Principal, admit
from forewarn.core.policy import released_detail_fields, visible
from forewarn.errors import ForewarnError, InvalidInput, NotFound
from forewarn.http.deps import RT, Caller, authenticated
from forewarn.http.runtime import Runtime
from forewarn.http.stream_routes import event_stream
from forewarn.service.tracking import IngestResult, Tracker, TrackState
from forewarn.tracks.alerts import view_alert
from forewarn.tracks.feeds import TooManyRecords, parse_own_json

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])

Source = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$",
                              description="name of the feed (counters are kept per party and source)")]
OperationId = Annotated[str | None, Query(max_length=64, description="operation the tracks belong to (yours)")]


class RowIssue(BaseModel):
    """A rejected or flagged row of the batch: its index (0-based) and the reason."""

    index: int
    reason: str


class IngestOut(BaseModel):
    """The result of feeding a batch: counts, rejected and flagged rows, and the alerts raised."""

    received: int
    accepted: int
    rejected: list[RowIssue]
    flagged: list[RowIssue]
    counts: dict[str, int]
    alerts: list[dict[str, Any]]
    """The alerts this batch raised that the feeding party is told of, as its deliveries carry them
    (:func:`forewarn.tracks.alerts.view_alert`): a batch may also trigger a prediction pass over every party's
    tracks, whose other alerts are not the feeder's to see."""


class TrackOut(BaseModel):
    """The latest state of a track: owner, operation, conformance (null: not checked) and last position."""

    party_id: str
    track_id: str
    operation_id: str | None
    source: str
    conforming: bool | None
    position: dict[str, Any]


def tracker_of(rt: Any) -> Tracker:
    tracker: Tracker | None = getattr(rt, "tracker", None)
    if tracker is None:
        raise InvalidInput("live tracks need the SQLite store")
    return tracker


def _out(result: IngestResult, parse_rejects: list[tuple[int, str]], viewer: str, book: AgreementBook) -> IngestOut:
    return IngestOut(
        received=result.received + len(parse_rejects), accepted=result.accepted,
        rejected=[RowIssue(index=i, reason=r) for i, r in sorted(parse_rejects + result.rejected)],
        flagged=[RowIssue(index=i, reason=r) for i, r in result.flagged],
        counts=result.counts | ({"unparsable": len(parse_rejects)} if parse_rejects else {}),
        alerts=[shown for a in result.alerts if (shown := view_alert(viewer, a, book)) is not None],
    )


def _ingest(rt: Any, who: Principal, body: bytes, source: str, operation_id: str | None) -> IngestOut:
    if operation_id is not None:
        # an operation the caller may not see (another party's, planned or of a party bound to it by no
        # agreement) answers exactly like one that does not exist
        op = rt.service.repo.get_operation(operation_id)
        if op is not None and op.party_id != who.party_id and not visible(who.party_id, op, rt.service.airspace.book):
            raise NotFound(f"no operation {operation_id}", {"operation_id": operation_id})
    limit = rt.settings.track_batch_max_rows
    try:  # streamed: a batch over the limit is refused once its first extra record is read
        parsed = parse_own_json(body, max_records=limit)
    except TooManyRecords as exc:
        raise InvalidInput(f"a batch holds at most {limit} positions; split it", {"max_rows": limit}) from exc
    except RecursionError as exc:  # the documented shape of an unparsable body (docs/api.md, errors)
        raise InvalidInput("the request is not valid", {"errors": [
            {"field": "body", "message": "the body nests JSON arrays or objects too deeply"}]}) from exc
    rows = parsed.row_index
    result = tracker_of(rt).ingest(parsed.batch, who.party_id, source, rt.clock(), operation_id)
    # the tracker numbers rows of the parsed batch; report them as rows of the request
    result.rejected = [(int(rows[i]), r) for i, r in result.rejected]
    result.flagged = [(int(rows[i]), r) for i, r in result.flagged]
    return _out(result, list(parsed.rejects), who.party_id, rt.service.airspace.book)


@router.post("/positions", response_model=IngestOut)
async def feed_positions(request: Request, rt: RT, who: Caller, source: Source = "api",
                         operation_id: OperationId = None) -> IngestOut:
    """Feed a batch of your positions (JSON array or JSON lines, gzip or not; at most ``track_batch_max_rows``
    records, else 422 with ``max_rows``, nothing stored; the body at most ``body_limit_tracks_bytes``, else 413).
    Positions already stored (same track and time) are skipped as ``already_stored``. Bad rows are rejected with
    a reason and counted; the rest are stored, checked for conformance and intrusions, and may raise alerts (also
    delivered to the parties concerned)."""
    who.require("tracks:feed")
    body = await request.body()
    return await run_in_threadpool(_ingest, rt, who, body, source, operation_id)


def _track_out(state: TrackState, viewer: str, book: AgreementBook, operation_visible: bool) -> TrackOut:
    """``state`` as ``viewer`` may see it (the caller checked that it may see the track at all): the call sign is
    planning detail, shown only to the owner and to parties the owner releases ``call_signs`` to; the operation
    id only when ``viewer`` may see that operation (``operation_visible``: not one still planned)."""
    last = state.last
    callsign = last.callsign if viewer == state.party_id or "call_signs" in released_detail_fields(
        viewer, state.party_id, book) else None
    position = {"t_s": last.t_s, "lat_deg": last.lat_deg, "lon_deg": last.lon_deg,
                "alt_m": None if last.alt_m != last.alt_m else last.alt_m,
                "gs_mps": None if last.gs_mps != last.gs_mps else last.gs_mps,
                "track_deg": None if last.track_deg != last.track_deg else last.track_deg,
                "callsign": callsign}
    return TrackOut(party_id=state.party_id, track_id=last.track_id,
                    operation_id=state.operation_id if operation_visible else None,
                    source=state.source, conforming=state.conforming, position=position)


def _visible_tracks(rt: Any, viewer: str) -> list[TrackOut]:
    """The latest state of the tracks ``viewer`` may see (its own and those of parties bound to it), each as it
    may see it (:func:`_track_out`)."""
    book = rt.service.airspace.book
    shown: dict[str, bool] = {}  # operation id -> whether viewer may see it (one lookup per operation)
    out: list[TrackOut] = []
    for state in tracker_of(rt).visible_tracks(viewer):
        op_id = state.operation_id
        if op_id is not None and op_id not in shown:
            op = None if state.party_id == viewer else rt.service.repo.get_operation(op_id)
            shown[op_id] = state.party_id == viewer or (op is not None and visible(viewer, op, book))
        out.append(_track_out(state, viewer, book, op_id is not None and shown[op_id]))
    return out


@router.get("", response_model=list[TrackOut])
def list_tracks(rt: RT, who: Caller) -> list[TrackOut]:
    """The latest state of your tracks and of the tracks of parties an agreement binds you to."""
    who.require("read")
    return _visible_tracks(rt, who.party_id)


@router.get("/quality")
def feed_quality(rt: RT, who: Caller) -> dict[str, dict[str, int]]:
    """Feed-quality counters (positions accepted, rejected and flagged per reason) of your sources; all for admin."""
    who.require("read")
    counters = tracker_of(rt).store.quality()
    if "admin" in who.scopes:
        return counters
    return {k: v for k, v in counters.items() if k.split("/", 1)[0] == who.party_id}


@router.get("/stream", response_class=EventSourceResponse)
async def stream_tracks(request: Request, rt: RT, who: Caller,
                        interval_s: Annotated[float, Query(ge=0.2, le=60)] = 1.0) -> EventSourceResponse:
    """Server-sent events: every ``interval_s`` the tracks you may see that moved (event ``track``, JSON with
    ``"type": "track"``, party_id, track_id, operation_id, conforming, lat_deg, lon_deg, alt_m, t_s)."""
    who.require("read")
    tracker_of(rt)

    async def events() -> AsyncIterator[bytes]:
        sent: dict[tuple[str, str], float] = {}
        yield ServerSentEvent(comment="tracks", sep="\n").encode()
        while not await request.is_disconnected():
            for out in await run_in_threadpool(_visible_tracks, rt, who.party_id):
                key = (out.party_id, out.track_id)
                if sent.get(key) == out.position["t_s"]:
                    continue
                sent[key] = out.position["t_s"]
                data = {"type": "track", "party_id": out.party_id, "track_id": out.track_id,
                        "operation_id": out.operation_id, "conforming": out.conforming} | out.position
                yield ServerSentEvent(data=json.dumps(data), event="track", sep="\n").encode()
            await asyncio.sleep(interval_s)

    return event_stream(events())


WS_SUBPROTOCOL = "forewarn.v1"
"""The subprotocol the track WebSocket answers with when the token comes in ``Sec-WebSocket-Protocol``."""

BEARER_PREFIX = "bearer."
"""A ``Sec-WebSocket-Protocol`` entry ``bearer.<token>`` carries the bearer token (beside ``forewarn.v1``)."""

FIRST_MESSAGE_TIMEOUT_S = 10.0
"""How long a socket opened without a token may wait before its first message (the token) arrives, s."""


def _offered_token(websocket: WebSocket, access_token: str | None) -> tuple[str | None, str | None]:
    """The token a client sent when opening the socket, and the subprotocol to answer with: ``Authorization:
    Bearer``, or a ``bearer.<token>`` subprotocol, or (deprecated: it lands in URL logs, which redact it)
    ``?access_token=``."""
    header = websocket.headers.get("authorization", "")
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    subprotocol = WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None
    if header.lower().startswith("bearer "):
        return header[7:], subprotocol
    for p in offered:
        if p.startswith(BEARER_PREFIX):
            return p[len(BEARER_PREFIX):], subprotocol
    return access_token, subprotocol


async def _first_message_token(websocket: WebSocket) -> str | None:
    """The token of a socket opened without one: its first message, ``{"access_token": "..."}``."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_TIMEOUT_S)
        message = json.loads(text)
    except (TimeoutError, ValueError):
        return None
    token = message.get("access_token") if isinstance(message, dict) else None
    return token if isinstance(token, str) and 0 < len(token) <= 4096 else None


@router.websocket("/ws")
async def feed_socket(websocket: WebSocket, source: Source = "ws", operation_id: OperationId = None,
                      access_token: Annotated[str | None, Query(max_length=4096, deprecated=True)] = None) -> None:
    """Feed positions over a WebSocket. Authenticate with ``Authorization: Bearer``, or with the subprotocols
    ``forewarn.v1, bearer.<token>`` (browsers: ``new WebSocket(url, ["forewarn.v1", "bearer." + token])``), or by
    opening without a token and sending ``{"access_token": "..."}`` as the first message (answered with
    ``{"authenticated": true, "party_id": ...}``); ``?access_token=`` still works but is deprecated. Then send
    text messages each holding a JSON array or JSON lines of positions; each is answered with the ingest result
    (as ``POST /v1/tracks/positions``) or ``{"error": {...}}``. A bad message never closes the socket."""
    rt = websocket.app.state.runtime
    token, subprotocol = _offered_token(websocket, access_token)
    if token is None:
        await websocket.accept(subprotocol=subprotocol)
        try:
            token = await _first_message_token(websocket)
        except WebSocketDisconnect:
            return
        who = await _authorised(websocket, rt, token)
        if who is None:
            return
        await websocket.send_text(json.dumps({"authenticated": True, "party_id": who.party_id}))
    else:
        who = await _authorised(websocket, rt, token)
        if who is None:
            return
        await websocket.accept(subprotocol=subprotocol)
    try:
        while True:
            message = await websocket.receive_text()
            try:
                admit(who, rt.service.party_access(who.party_id))  # revoked since it opened? (every message)
            except ForewarnError as exc:
                await websocket.close(code=1008, reason=exc.message[:120])
                return
            try:
                out = await run_in_threadpool(_ingest, rt, who, message.encode(), source, operation_id)
                await websocket.send_text(out.model_dump_json())
            except ForewarnError as exc:
                await websocket.send_text(json.dumps({"error": {"code": exc.code, "message": exc.message,
                                                                "details": exc.details}}))
    except WebSocketDisconnect:
        return


async def _authorised(websocket: WebSocket, rt: Runtime, token: str | None) -> Principal | None:
    """The feeding party of ``token``, or None after closing the socket (1008, policy violation) with the
    reason."""
    try:
        who = authenticated(rt, token)
        who.require("tracks:feed")
    except ForewarnError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return None
    return who
