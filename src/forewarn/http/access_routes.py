"""Access control routes (admin, ``/v1``): disable and re-enable a party, list and revoke its credentials, and
the service status with counts (kept off the unauthenticated ``/v1/health``). Every change is recorded in the
ledger and takes effect with the next request of every token concerned (:mod:`forewarn.service.access`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from forewarn.core.text import PrintableText
from forewarn.errors import NotFound
from forewarn.http.deps import RT, Caller

router = APIRouter(prefix="/v1")


class ReasonIn(BaseModel):
    """Why (kept in the ledger entry)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "credentials leaked"}]})

    reason: PrintableText = Field(default="", max_length=500)


OptionalReason = Annotated[ReasonIn | None, Body(examples=[{"reason": "credentials leaked"}])]
"""An optional body giving the reason."""


class CredentialOut(BaseModel):
    """A party's client credentials as an admin sees them (never the secret or its hash)."""

    client_id: str
    party_id: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class PartyStateOut(BaseModel):
    """A party's access state: when it was disabled (UTC; null while enabled)."""

    party_id: str
    disabled_at: datetime | None


def _state(rt: RT, party_id: str) -> PartyStateOut:
    access = rt.service.party_access(party_id)
    if access is None:
        raise NotFound(f"no party {party_id}", {"party_id": party_id})
    return PartyStateOut(party_id=party_id, disabled_at=access.disabled_at)


@router.post("/parties/{party_id}/disable", response_model=PartyStateOut, tags=["parties"])
def disable_party(rt: RT, who: Caller, party_id: str, body: OptionalReason = None) -> PartyStateOut:
    """Disable a party (admin): every token of it is refused from the next request on, whoever issued it, and
    its credentials get no new token. Recorded in the ledger (``party_disabled``)."""
    who.require("admin")
    rt.service.disable_party(party_id, rt.clock(), body.reason if body else "")
    return _state(rt, party_id)


@router.post("/parties/{party_id}/enable", response_model=PartyStateOut, tags=["parties"])
def enable_party(rt: RT, who: Caller, party_id: str, body: OptionalReason = None) -> PartyStateOut:
    """Enable a disabled party again (admin). Recorded in the ledger (``party_enabled``)."""
    who.require("admin")
    rt.service.enable_party(party_id, rt.clock(), body.reason if body else "")
    return _state(rt, party_id)


@router.get("/parties/{party_id}/credentials", response_model=list[CredentialOut], tags=["parties"])
def list_credentials(rt: RT, who: Caller, party_id: str) -> list[CredentialOut]:
    """A party's client credentials, revoked ones included (admin)."""
    who.require("admin")
    _state(rt, party_id)
    return [CredentialOut(client_id=c.client_id, party_id=c.party_id, scopes=list(c.scopes), created_at=c.created_at,
                          revoked_at=c.revoked_at) for c in rt.service.credentials_of(party_id)]


@router.post("/parties/{party_id}/credentials/{client_id}/revoke", response_model=CredentialOut, tags=["parties"])
def revoke_credentials(rt: RT, who: Caller, party_id: str, client_id: str,
                       body: OptionalReason = None) -> CredentialOut:
    """Revoke client credentials (admin): the secret gets no new token and the tokens issued for it are refused
    from the next request on. Recorded in the ledger (``credential_revoked``)."""
    who.require("admin")
    c = rt.service.revoke_credential(client_id, rt.clock(), body.reason if body else "", party_id=party_id)
    return CredentialOut(client_id=c.client_id, party_id=c.party_id, scopes=list(c.scopes), created_at=c.created_at,
                         revoked_at=c.revoked_at)


@router.get("/admin/status", tags=["service"])
def status(rt: RT, who: Caller) -> dict[str, Any]:
    """The service's status with counts (admin): schema version, live operations, parties (and how many are
    disabled). ``GET /v1/health`` answers without a token and so says only whether the service is up."""
    who.require("admin")
    parties = rt.service.parties_visible_to(who.party_id, admin=True)
    disabled = sum(1 for p in parties if (a := rt.service.party_access(p.id)) and a.disabled_at is not None)
    return {"status": "ok", "schema_version": rt.service.store_version(),
            "live_operations": len(rt.service.airspace.operations), "parties": len(parties),
            "disabled_parties": disabled}
