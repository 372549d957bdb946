"""The routes of the HTTP API (``/v1``). Each handler authenticates, checks the scope, calls one use case with
``now`` from the runtime's clock, and returns what the policy lets the caller see."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from forewarn.core.credentials import Principal
from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite, Subscription
from forewarn.core.policy import can_see, envelope_volumes, view_delivery, view_operation, view_outcome, visible
from forewarn.core.records import Delivery, NoticeOutcome
from forewarn.errors import ForewarnError, InvalidInput, NotFound
from forewarn.http.deps import RT, Caller, SignedRequest
from forewarn.http.runtime import Runtime
from forewarn.http.schemas import (
    AmendIn,
    CheckIn,
    CredentialsIn,
    CredentialsOut,
    IdPath,
    OperationIn,
    PartyQuery,
    SiteIn,
    SubscriptionIn,
)
from forewarn.ledger.keys import PartySignature
from forewarn.service.group_commit import Work
from forewarn.service.idempotency import Idempotency
from forewarn.service.situation import situation

router = APIRouter(prefix="/v1")
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                        description="retrying with the same key returns the first result")]


def _shown(rt: Runtime, who: Principal, outcome: NoticeOutcome, op: Operation | None = None) -> NoticeOutcome:
    """The outcome of the caller's own filing or check as the policy shows it to the caller."""
    service = rt.service
    if op is None:  # the live picture holds the version just stored (unless it has moved on): no read
        live = service.airspace.operations.get(outcome.operation_id)
        op = live if live is not None and live.version == outcome.version else service.repo.get_operation(
            outcome.operation_id, outcome.version)
    if op is None:  # pragma: no cover - a stored outcome always has its operation version
        raise NotFound(f"no operation {outcome.operation_id}")
    with service.commits.reading():  # the live picture is read for proposals against coarsened volumes
        return view_outcome(who.party_id, outcome, op, service.airspace.book, service.airspace,
                            service.settings.resolution_bounds(), service.repo.get_operation)


def _idem(who: Principal, key: str | None, path: str, body: Any) -> Idempotency | None:
    if not key:
        return None
    canonical = json.dumps(body, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()
    return Idempotency(party_id=who.party_id, key=key, request_hash=digest)


# ---------------------------------------------------------------------------------------------- tokens, keys
@router.get("/keys", tags=["auth"])
def keys(rt: RT) -> dict[str, Any]:
    """The service's public keys (JWKS): they verify its tokens and the signatures of its webhooks."""
    return {"keys": [rt.key.public_jwk()]}


# ---------------------------------------------------------------------------------------------- admin
@router.get("/parties", response_model=list[Party], tags=["parties"])
def list_parties(rt: RT, who: Caller) -> list[Party]:
    """Parties: all for an admin; otherwise yourself and the parties an agreement binds you to."""
    who.require("read")
    book = rt.service.airspace.book
    return [p for p in rt.service.repo.list_parties()
            if "admin" in who.scopes or can_see(who.party_id, p.id, book)]


@router.post("/parties", response_model=Party, status_code=201, tags=["parties"])
def put_party(rt: RT, who: Caller, party: Party) -> Party:
    """Create or update a party (admin)."""
    who.require("admin")
    rt.service.put_party(party)
    return party


@router.post("/parties/{party_id}/credentials", response_model=CredentialsOut, status_code=201, tags=["parties"])
def add_credentials(rt: RT, who: Caller, party_id: IdPath, body: CredentialsIn) -> CredentialsOut:
    """New client credentials for a party (admin). The secret is shown once."""
    who.require("admin")
    cred, secret = rt.service.issue_credential(party_id, body.scopes, rt.clock())
    return CredentialsOut(client_id=cred.client_id, client_secret=secret, party_id=party_id, scopes=list(cred.scopes))


@router.get("/agreements", response_model=list[Agreement], tags=["agreements"])
def list_agreements(rt: RT, who: Caller) -> list[Agreement]:
    """Agreements: all for an admin; otherwise those you are party to."""
    who.require("read")
    return [a for a in rt.service.repo.list_agreements() if "admin" in who.scopes or who.party_id in a.parties]


@router.post("/agreements", response_model=Agreement, status_code=201, tags=["agreements"])
def put_agreement(rt: RT, who: Caller, agreement: Agreement) -> Agreement:
    """Create or update an agreement (admin); every party it names must exist."""
    who.require("admin")
    rt.service.put_agreement(agreement, rt.clock())
    return agreement


# ---------------------------------------------------------------------------------------------- operations
async def _filed(rt: Runtime, who: Principal, work: Work) -> NoticeOutcome:
    """Run a filing on the service's sequencer thread (group commit, :meth:`Forewarn.queued`) and return its
    outcome as the caller may see it: the event loop waits without holding a thread."""
    return await asyncio.wrap_future(rt.service.queued(work, lambda outcome: _shown(rt, who, outcome)))


@router.post("/operations", response_model=NoticeOutcome, status_code=201, tags=["operations"])
async def file_notice(rt: RT, who: Caller, body: OperationIn, sig: SignedRequest,
                      idempotency_key: IdemKey = None) -> NoticeOutcome:
    """File a notice (notify an operation): conflicts, resolutions, site warnings; deliveries are sent after
    commit to every party the agreements bind you to. Optionally signed by the party (``Forewarn-Key-Id``,
    ``Forewarn-Nonce``, ``Forewarn-Signature``): the signature is verified and kept in the ledger."""
    who.require("notices:file")
    op = Operation(id=body.id, party_id=who.party_id, activity_class=body.activity_class, volumes=body.volumes,
                   detail=body.detail)
    idem = _idem(who, idempotency_key, "/v1/operations", body.model_dump(mode="json"))
    return await _filed(rt, who, rt.service.notice_work(op, rt.clock(), idem, party_signature=sig))


@router.post("/check", response_model=NoticeOutcome, tags=["operations"])
def check(rt: RT, who: Caller, body: CheckIn) -> NoticeOutcome:
    """What-if: the conflicts and resolutions this operation would meet if notified now. Stores nothing."""
    who.require("read")
    op = Operation(id=body.id, party_id=who.party_id, activity_class=body.activity_class, volumes=body.volumes)
    return _shown(rt, who, rt.service.check(op, rt.clock()), op)


@router.post("/operations/{operation_id}/amend", response_model=NoticeOutcome, tags=["operations"])
async def amend(rt: RT, who: Caller, operation_id: IdPath, body: AmendIn, sig: SignedRequest,
                idempotency_key: IdemKey = None) -> NoticeOutcome:
    """Amend your operation: give the version you amend; a stale version gets 409 with the current one."""
    who.require("notices:file")
    changes: dict[str, Any] = {}
    if body.activity_class is not None:
        changes["activity_class"] = body.activity_class
    if body.detail is not None:
        changes["detail"] = body.detail
    idem = _idem(who, idempotency_key, f"/v1/operations/{operation_id}/amend", body.model_dump(mode="json"))
    return await _filed(rt, who, rt.service.amendment_work(operation_id, body.version, who.party_id, rt.clock(),
                                                           volumes=body.volumes, changes=changes, idem=idem,
                                                           party_signature=sig))


async def _transition(rt: Runtime, who: Principal, operation_id: str,
                      action: Literal["cancel", "activate", "complete"], key: str | None,
                      sig: PartySignature | None) -> NoticeOutcome:
    who.require("notices:file")
    idem = _idem(who, key, f"/v1/operations/{operation_id}/{action}", {})
    return await _filed(rt, who, rt.service.transition_work(operation_id, who.party_id, rt.clock(), action, idem,
                                                            party_signature=sig))


@router.post("/operations/{operation_id}/cancel", response_model=NoticeOutcome, tags=["operations"])
async def cancel(rt: RT, who: Caller, operation_id: IdPath, sig: SignedRequest,
                 idempotency_key: IdemKey = None) -> NoticeOutcome:
    """Cancel your operation; it leaves detection, its versions are kept."""
    return await _transition(rt, who, operation_id, "cancel", idempotency_key, sig)


@router.post("/operations/{operation_id}/activate", response_model=NoticeOutcome, tags=["operations"])
async def activate(rt: RT, who: Caller, operation_id: IdPath, sig: SignedRequest,
                   idempotency_key: IdemKey = None) -> NoticeOutcome:
    """Your notified operation starts."""
    return await _transition(rt, who, operation_id, "activate", idempotency_key, sig)


@router.post("/operations/{operation_id}/complete", response_model=NoticeOutcome, tags=["operations"])
async def complete(rt: RT, who: Caller, operation_id: IdPath, sig: SignedRequest,
                   idempotency_key: IdemKey = None) -> NoticeOutcome:
    """Your active operation is over; it leaves detection."""
    return await _transition(rt, who, operation_id, "complete", idempotency_key, sig)


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise InvalidInput("bbox is min_lon,min_lat,max_lon,max_lat in degrees") from exc
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInput("bbox is min_lon,min_lat,max_lon,max_lat with min <= max, within [-180, 180] x [-90, 90]")
    return minx, miny, maxx, maxy


@router.get("/operations", tags=["operations"])
def list_operations(
    rt: RT, who: Caller,
    state: Annotated[list[OperationState] | None, Query()] = None,
    party: PartyQuery = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84 degrees)")] = None,
    start: Annotated[datetime | None, Query(description="only operations ending after this time (UTC)")] = None,
    end: Annotated[datetime | None, Query(description="only operations starting before this time (UTC)")] = None,
) -> list[dict[str, Any]]:
    """Operations you may see (yours in full, others through the agreements' policy), filtered."""
    who.require("read")
    box = _bbox(bbox)
    for t in (start, end):
        if t is not None and t.tzinfo is None:
            raise InvalidInput("start and end need a UTC offset")
    book = rt.service.airspace.book
    out: list[dict[str, Any]] = []
    for op in rt.service.repo.list_operations(state, party):
        if not visible(who.party_id, op, book):
            continue
        # filter on the volumes as shown to the caller: filtering on exact ones would let bisecting queries
        # find the exact bounds and times of a coarsened envelope
        shown = envelope_volumes(who.party_id, op, book)
        if (start and max(v.end for v in shown) <= start) or (end and min(v.start for v in shown) >= end):
            continue
        if box is not None and not any(_meets(v.shape.bounds, box) for v in shown):
            continue
        view = view_operation(who.party_id, op, book)
        if view is not None:
            out.append(view)
    now = rt.clock()
    for view in out:  # planning detail released to another party: a disclosure, recorded in the ledger
        if "detail" in view and view["party_id"] != who.party_id:
            rt.service.record_disclosure(who.party_id, view["id"], view, now, "GET /v1/operations")
    return out


def _meets(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@router.get("/operations/{operation_id}", tags=["operations"])
def get_operation(rt: RT, who: Caller, operation_id: IdPath) -> dict[str, Any]:
    """One operation as you may see it (404 if it does not exist or you may not see it)."""
    who.require("read")
    op = rt.service.repo.get_operation(operation_id)
    view = None if op is None else view_operation(who.party_id, op, rt.service.airspace.book)
    if view is None:
        raise NotFound(f"no operation {operation_id}")
    if "detail" in view and op is not None and op.party_id != who.party_id:
        rt.service.record_disclosure(who.party_id, operation_id, view, rt.clock(), f"GET /v1/operations/{operation_id}")
    return view


@router.get("/situation", tags=["operations"])
def get_situation(
    rt: RT, who: Caller,
    planned: Annotated[bool, Query(description="include your own planned operations")] = False,
) -> dict[str, Any]:
    """The situation as you may see it, as GeoJSON (RFC 7946, WGS84 lon/lat): volumes, protected sites,
    your conflicts and site warnings (the export of ``forewarn export``, through the sharing policy)."""
    who.require("read")
    return situation(rt.service.repo, include_planned=planned, viewer=who.party_id, book=rt.service.airspace.book)


# ---------------------------------------------------------------------------------------------- sites, subscriptions
@router.get("/sites", response_model=list[ProtectedSite], tags=["protected sites"])
def list_sites(rt: RT, who: Caller) -> list[ProtectedSite]:
    """Protected sites registered by you or by parties an agreement binds you to."""
    who.require("read")
    book = rt.service.airspace.book
    return [s for s in rt.service.repo.list_sites() if can_see(who.party_id, s.registered_by, book)]


@router.post("/sites", response_model=ProtectedSite, status_code=201, tags=["protected sites"])
def register_site(rt: RT, who: Caller, body: SiteIn, sig: SignedRequest) -> ProtectedSite:
    """Register (or update) one of your protected sites."""
    who.require("sites:register")
    existing = rt.service.repo.get_site(body.id)
    if existing is not None and existing.registered_by != who.party_id:
        raise NotFound(f"no site {body.id} of yours")
    site = ProtectedSite(registered_by=who.party_id, **body.model_dump())
    rt.service.register_site(site, rt.clock(), party_signature=sig)
    return site


@router.get("/subscriptions", response_model=list[Subscription], tags=["subscriptions"])
def list_subscriptions(rt: RT, who: Caller) -> list[Subscription]:
    """Your subscriptions."""
    who.require("read")
    return rt.service.repo.list_subscriptions(who.party_id)


@router.post("/subscriptions", response_model=Subscription, status_code=201, tags=["subscriptions"])
def put_subscription(rt: RT, who: Caller, body: SubscriptionIn) -> Subscription:
    """Create or replace a subscription: notices meeting this area x band x window are delivered to you."""
    who.require("read")
    existing = [s for s in rt.service.repo.list_subscriptions() if s.id == body.id]
    if existing and existing[0].party_id != who.party_id:
        raise NotFound(f"no subscription {body.id} of yours")
    sub = Subscription(id=body.id, party_id=who.party_id, volume=body.volume)
    with rt.service.repo.transaction():
        rt.service.repo.put_subscription(sub)
    return sub


@router.delete("/subscriptions/{subscription_id}", status_code=204, tags=["subscriptions"])
def delete_subscription(rt: RT, who: Caller, subscription_id: IdPath) -> Response:
    """Delete one of your subscriptions."""
    who.require("read")
    if not any(s.id == subscription_id for s in rt.service.repo.list_subscriptions(who.party_id)):
        raise NotFound(f"no subscription {subscription_id} of yours")
    with rt.service.repo.transaction():
        rt.service.repo.delete_subscription(subscription_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------- deliveries
@router.get("/inbox", response_model=list[Delivery], tags=["deliveries"])
def inbox(
    rt: RT, who: Caller,
    after: Annotated[int, Query(ge=0, le=2**62, description="only deliveries with a sequence number above this")] = 0,
    channel: Annotated[str | None, Query(pattern="^(primary|backup)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Delivery]:
    """Your deliveries, oldest first, with their created/sent/delivered/acknowledged times and lead times."""
    who.require("read")
    book = rt.service.airspace.book
    return [v for d in rt.desk.inbox(who.party_id, after, channel, limit)
            if (v := view_delivery(who.party_id, d, book)) is not None]


@router.post("/deliveries/{delivery_id}/ack", response_model=Delivery, tags=["deliveries"])
def acknowledge(rt: RT, who: Caller, delivery_id: IdPath, sig: SignedRequest) -> Delivery:
    """Acknowledge a delivery: "received and understood", never approval. Optionally signed (see filing)."""
    who.require("ack")
    return rt.desk.acknowledge(delivery_id, who.party_id, rt.clock(), party_signature=sig)


@router.get("/health", tags=["service"], responses={503: {"description": "the store cannot be read"}})
def health(rt: RT) -> Any:
    """Liveness: the schema version and the number of live operations; 503 when the store cannot be read."""
    try:
        probe = getattr(rt.service.repo, "probe", None)
        if probe is not None:
            probe()
        version = rt.service.repo.schema_version()
    except ForewarnError as exc:
        return JSONResponse({"status": "unavailable", "code": exc.code, "message": exc.message}, status_code=503)
    return {"status": "ok", "schema_version": version, "live_operations": len(rt.service.airspace.operations)}
