"""Ledger routes (``/v1``): parties' signing keys, audit queries, delivery receipts, chain verification (the caller
and a party's signature of its submission come from :mod:`forewarn.http.deps`).

Who may do what:

* a party registers, rotates and revokes **its own** keys with a token carrying ``keys:manage`` (a read-only
  token gets 403) — or an ``admin`` does it for any party; anyone with ``read`` lists a party's keys with their
  history (public keys are public);
* ``GET /v1/audit/shown``: an admin, the party asked about, or the owner of the operation;
* ``GET /v1/audit/sites/{id}``: an admin or the site's registrant;
* ``GET /v1/deliveries/{id}/receipt``: an admin or the delivery's recipient (the receipt carries what the
  recipient was shown, so it is the recipient's to hand to a third party);
* ``GET /v1/ledger/verify``: an admin; ``GET /v1/ledger/head``: anyone with ``read`` (publish the head).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from forewarn.core.airspace import AgreementBook
from forewarn.core.credentials import Principal
from forewarn.core.policy import can_see, coarsening_for
from forewarn.errors import Forbidden, NotFound
from forewarn.http.deps import RT, Caller
from forewarn.ledger.chain import LedgerEntry
from forewarn.ledger.keys import PartyKey, raw_public
from forewarn.service.receipts import build_receipt

router = APIRouter(prefix="/v1")


class KeyIn(BaseModel):
    """An Ed25519 public key: raw 32 bytes as base64url, or PEM (``-----BEGIN PUBLIC KEY-----``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"public_key": "496BnjUUUC9hQuLutYImjcS0JRXi18_EUs25DSh1pbA"}]})

    public_key: str = Field(min_length=40, max_length=1000)


def _own_or_admin(who: Principal, party_id: str) -> None:
    """A party manages its own keys with ``keys:manage``; an admin manages anyone's."""
    if who.party_id != party_id and "admin" not in who.scopes:
        raise Forbidden(f"only {party_id} itself or an admin may manage its keys", {"party_id": party_id})
    who.require("keys:manage")


@router.post("/parties/{party_id}/keys", response_model=PartyKey, status_code=201, tags=["ledger"])
def register_key(rt: RT, who: Caller, party_id: str, body: KeyIn) -> PartyKey:
    """Register a signing key of yours (valid from now); recorded in the ledger."""
    _own_or_admin(who, party_id)
    return rt.service.ledger.register_key(party_id, body.public_key, rt.clock())


@router.get("/parties/{party_id}/keys", response_model=list[PartyKey], tags=["ledger"])
def list_keys(rt: RT, who: Caller, party_id: str) -> list[PartyKey]:
    """A party's keys with their history (valid_from, revoked_at, replaces)."""
    who.require("read")
    return rt.service.repo.list_party_keys(party_id)


@router.post("/parties/{party_id}/keys/{key_id}/rotate", response_model=PartyKey, status_code=201, tags=["ledger"])
def rotate_key(rt: RT, who: Caller, party_id: str, key_id: str, body: KeyIn) -> PartyKey:
    """Replace a key: the old one is revoked now, the new one (returned) valid from now."""
    _own_or_admin(who, party_id)
    return rt.service.ledger.rotate_key(party_id, key_id, body.public_key, rt.clock())


@router.post("/parties/{party_id}/keys/{key_id}/revoke", response_model=PartyKey, tags=["ledger"])
def revoke_key(rt: RT, who: Caller, party_id: str, key_id: str) -> PartyKey:
    """Revoke a key now: submissions signed with it are refused from now on."""
    _own_or_admin(who, party_id)
    return rt.service.ledger.revoke_key(party_id, key_id, rt.clock())


@router.get("/audit/shown", tags=["ledger"])
def audit_shown(
    rt: RT, who: Caller,
    party: Annotated[str, Query(max_length=64, description="the party that was shown")],
    operation: Annotated[str, Query(max_length=200, description="the operation")],
) -> list[dict[str, Any]]:
    """What ``party`` was shown of ``operation`` and when: deliveries (with delivery and acknowledgement times)
    and recorded disclosures, from the ledger."""
    who.require("read")
    op = rt.service.repo.get_operation(operation)
    owner = op.party_id if op is not None else None
    if "admin" not in who.scopes and who.party_id not in (party, owner):
        raise Forbidden("only an admin, that party or the operation's owner may ask this")
    return rt.service.ledger.shown(party, operation)


@router.get("/audit/sites/{site_id}", tags=["ledger"])
def audit_site(rt: RT, who: Caller, site_id: str) -> dict[str, Any]:
    """Which parties received the registration of a protected site and acknowledged it, when."""
    who.require("read")
    site = rt.service.repo.get_site(site_id)
    if site is None or ("admin" not in who.scopes and who.party_id != site.registered_by):
        raise NotFound(f"no site {site_id} of yours")
    return rt.service.ledger.site_receipts(site_id)


@router.get("/deliveries/{delivery_id}/receipt", tags=["ledger"])
def receipt(rt: RT, who: Caller, delivery_id: str) -> dict[str, Any]:
    """The self-contained receipt of a delivery (check it offline with ``forewarn ledger check-receipt``)."""
    who.require("read")
    delivery = rt.service.repo.get_delivery(delivery_id)
    if delivery is None or ("admin" not in who.scopes and delivery.party_id != who.party_id):
        raise NotFound(f"no delivery {delivery_id} for party {who.party_id}")
    built = build_receipt(rt.service.ledger, delivery_id)
    if "admin" in who.scopes:
        return built
    return withhold_origins(built, who.party_id, rt.service.airspace.book)


NOTICE_ENTRY_KINDS = frozenset({"notice", "amendment", "cancellation", "activation", "completion"})
"""Ledger kinds of the entries a notice writes (its origin entry)."""


def withhold_origins(built: dict[str, Any], viewer: str, book: AgreementBook) -> dict[str, Any]:
    """A receipt as ``viewer`` may hold it. Notice entries written before e5e1bae recorded the operation's exact
    window (``start``, ``end``, UTC; entries written since commit to it by digest only, so this changes nothing
    for them); where the notifying party's times are coarsened for ``viewer`` (or no agreement binds them any
    more) such an entry is carried only as its link (seq, hashes), like any other entry, and the receipt says so
    under ``withheld``. Such a receipt still proves the delivery, its times and its place in
    the chain, not the origin entry's content (:func:`forewarn.ledger.receipts.check_receipt` reports the origin
    as missing)."""
    kept: list[dict[str, Any]] = []
    links = list(built["links"])
    withheld: list[str] = []
    for entry in built["entries"]:
        owner = entry.get("party_id")
        body = entry.get("body", {})
        if (entry.get("kind") in NOTICE_ENTRY_KINDS and isinstance(owner, str) and owner != viewer
                and ("start" in body or "end" in body)):
            coarsening = coarsening_for(viewer, owner, book)
            if not can_see(viewer, owner, book) or (coarsening is not None and coarsening.time_step_s > 0):
                links.append(LedgerEntry.model_validate(entry).link().model_dump(mode="json"))
                withheld.append(f"entry {entry['seq']} ({entry['kind']}): it records the exact window of an "
                                f"operation whose times are coarsened for you")
                continue
        kept.append(entry)
    if not withheld:
        return built
    return built | {"entries": kept, "links": sorted(links, key=lambda link: int(link["seq"])),
                    "withheld": withheld}


@router.get("/ledger/head", tags=["ledger"])
def head(rt: RT, who: Caller) -> dict[str, Any]:
    """The last entry's sequence number and hash, and the service's public keys: publish them to pin."""
    who.require("read")
    current = rt.service.repo.ledger_head()
    return {"seq": current[0] if current else 0, "entry_hash": current[1] if current else None,
            "service_keys": {kid: raw_public(k) for kid, k in rt.service.ledger.service_keys().items()}}


@router.get("/ledger/verify", tags=["ledger"])
def verify(rt: RT, who: Caller) -> dict[str, Any]:
    """Verify the whole chain (admin): the first bad entry is named."""
    who.require("admin")
    return rt.service.ledger.verify().as_dict()
