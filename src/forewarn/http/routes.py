"""The routes of the HTTP API (``/v1``). Each handler authenticates, checks the scope, calls one use case with
``now`` from the runtime's clock, and returns what the policy lets the caller see."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from forewarn.core.credentials import Principal
from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite, Subscription
from forewarn.core.policy import view_delivery
from forewarn.core.records import Delivery, NoticeOutcome
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.http.deps import RT, Caller, SignedRequest
from forewarn.http.operator_view import refuse_operator_view
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

router = APIRouter(prefix="/v1")
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                        description="retrying with the same key returns the first result")]


def _shown(rt: Runtime, who: Principal, outcome: NoticeOutcome, op: Operation | None = None) -> NoticeOutcome:
    """The outcome of the caller's own filing or check as the policy shows it to the caller."""
    return rt.service.outcome_shown_to(who.party_id, outcome, op)


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
    return rt.service.parties_visible_to(who.party_id, "admin" in who.scopes)


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
    return rt.service.agreements_visible_to(who.party_id, "admin" in who.scopes)


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
    # no id given: one chosen here that no other party can guess, so none can take it first (docs/security.md)
    op = Operation(id=body.id or f"op-{uuid.uuid4().hex}", party_id=who.party_id, activity_class=body.activity_class,
                   volumes=body.volumes, detail=body.detail)
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
    """Operations you may see (yours in full, others through the agreements' policy), filtered. An admin token of a
    party bound by no agreement (the service's operator) gets 403 ``admin_sees_no_operations``: no agreement
    releases any operation to it."""
    who.require("read")
    refuse_operator_view(who, rt.service.airspace.book)
    box = _bbox(bbox)
    for t in (start, end):
        if t is not None and t.tzinfo is None:
            raise InvalidInput("start and end need a UTC offset")
    return rt.service.operations_visible_to(who.party_id, rt.clock(), "GET /v1/operations", states=state,
                                            party=party, box=box, start=start, end=end)


@router.get("/operations/{operation_id}", tags=["operations"])
def get_operation(rt: RT, who: Caller, operation_id: IdPath) -> dict[str, Any]:
    """One operation as you may see it (404 if it does not exist or you may not see it; 403
    ``admin_sees_no_operations`` for the operator's admin token, whatever the id)."""
    who.require("read")
    refuse_operator_view(who, rt.service.airspace.book)
    return rt.service.operation_visible_to(who.party_id, operation_id, rt.clock(),
                                           f"GET /v1/operations/{operation_id}")


@router.get("/situation", tags=["operations"])
def get_situation(
    rt: RT, who: Caller,
    planned: Annotated[bool, Query(description="include your own planned operations")] = False,
) -> dict[str, Any]:
    """The situation as you may see it, as GeoJSON (RFC 7946, WGS84 lon/lat): volumes, protected sites,
    your conflicts and site warnings (the export of ``forewarn export``, through the sharing policy); 403
    ``admin_sees_no_operations`` for the operator's admin token."""
    who.require("read")
    refuse_operator_view(who, rt.service.airspace.book)
    return rt.service.situation_seen_by(who.party_id, planned)


# ---------------------------------------------------------------------------------------------- sites, subscriptions
@router.get("/sites", response_model=list[ProtectedSite], tags=["protected sites"])
def list_sites(rt: RT, who: Caller) -> list[ProtectedSite]:
    """Protected sites registered by you or by parties an agreement binds you to."""
    who.require("read")
    return rt.service.sites_visible_to(who.party_id)


@router.post("/sites", response_model=ProtectedSite, status_code=201, tags=["protected sites"])
def register_site(rt: RT, who: Caller, body: SiteIn, sig: SignedRequest) -> ProtectedSite:
    """Register (or update) one of your protected sites: within the volume limits (vertices, area: 422), at most
    ``FOREWARN_MAX_SITES_PER_PARTY`` per party (409)."""
    who.require("sites:register")
    site = ProtectedSite(registered_by=who.party_id, **body.model_dump())
    rt.service.register_own_site(site, rt.clock(), party_signature=sig)
    return site


@router.get("/subscriptions", response_model=list[Subscription], tags=["subscriptions"])
def list_subscriptions(rt: RT, who: Caller) -> list[Subscription]:
    """Your subscriptions."""
    who.require("read")
    return rt.service.subscriptions_of(who.party_id)


@router.post("/subscriptions", response_model=Subscription, status_code=201, tags=["subscriptions"])
def put_subscription(rt: RT, who: Caller, body: SubscriptionIn) -> Subscription:
    """Create or replace one of your subscriptions (ids are yours: another party's use of the same id changes
    nothing): notices meeting this area x band x window are delivered to you. Its
    volume obeys the volume limits (422); a party holds at most ``FOREWARN_MAX_SUBSCRIPTIONS_PER_PARTY`` (409)."""
    who.require("read")
    sub = Subscription(id=body.id, party_id=who.party_id, volume=body.volume)
    rt.service.put_subscription(sub, rt.clock())
    return sub


@router.delete("/subscriptions/{subscription_id}", status_code=204, tags=["subscriptions"])
def delete_subscription(rt: RT, who: Caller, subscription_id: IdPath) -> Response:
    """Delete one of your subscriptions."""
    who.require("read")
    rt.service.delete_own_subscription(who.party_id, subscription_id)
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
    """Liveness, for anyone: ``{"status": "ok", "process": PID}`` (the id of the process that answered: with
    ``forewarn serve --workers N``, which of the N), or 503 when the store cannot be read. It says nothing about the
    parties' operations (an admin reads the counts at ``GET /v1/admin/status``)."""
    try:
        rt.service.store_version()
    except ForewarnError as exc:
        return JSONResponse({"status": "unavailable", "code": exc.code, "message": exc.message}, status_code=503)
    return {"status": "ok", "process": os.getpid()}
