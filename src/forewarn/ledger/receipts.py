"""Delivery receipts: a self-contained, offline-checkable proof that a notice (or a protected-site registration)
was delivered to a party at T and acknowledged at T'.

A receipt (``format: forewarn-receipt/1``) holds:

* ``entries``: the full ledger entries that matter — the origin (the notice, amendment, ... or site
  registration), the delivery's ``delivery_created`` entry (with what the recipient was shown), its
  ``delivery_sent`` / ``delivery_delivered`` / ``escalation`` entries and the ``acknowledgement`` covering it,
  each with the service's signature and any party signature (with the party's public key);
* ``links``: for every other entry between the first of those and the checkpoint that covers the last (the
  first signed entry at or after it), only ``(seq, prev_hash, digest, entry_hash)`` and, on a checkpoint, its
  service signature — it proves the chain is unbroken (so the order), signs the entries in between, and
  reveals nothing of other entries;
* ``service_keys``: the service's public keys (kid -> raw Ed25519, base64url).

:func:`forewarn.service.receipts.build_receipt` builds one from the stored ledger; :func:`check_receipt` needs
nothing but the receipt (and, better, a service public key pinned out of band):
it recomputes every digest and hash, checks the chain is contiguous, every signature, that every full entry is
covered by a checkpoint the receipt carries, and then states what is proven. Times are UTC.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from forewarn.ledger.chain import LedgerEntry, Link, checkpoint_problem, entry_problem, link_hash
from forewarn.ledger.keys import load_public_key, raw_public

FORMAT = "forewarn-receipt/1"


@dataclass
class ReceiptCheck:
    """What a receipt proves (``proves``), or why it proves nothing (``problems``)."""

    valid: bool = False
    delivery_id: str | None = None
    delivered_at: str | None = None
    acknowledged_at: str | None = None
    proves: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "delivery_id": self.delivery_id, "delivered_at": self.delivered_at,
                "acknowledged_at": self.acknowledged_at, "proves": self.proves, "problems": self.problems}


def _chain(entries: list[LedgerEntry], links: list[Link], keys: dict[str, Ed25519PublicKey]) -> list[str]:
    """Problems with the chain segment the receipt carries (empty when it holds)."""
    problems: list[str] = []
    items: dict[int, Link] = {}
    for e in entries:
        problem = entry_problem(e, keys)
        if problem is not None:
            problems.append(f"entry {e.seq}: {problem}")
        items[e.seq] = e.link()
    for link in links:
        if link.seq in items:
            problems.append(f"entry {link.seq} appears twice")
        if link_hash(link.seq, link.prev_hash, link.digest) != link.entry_hash:
            problems.append(f"link {link.seq}: its hash does not match its sequence number, previous hash and digest")
        problem = checkpoint_problem(link, keys)
        if problem is not None:
            problems.append(f"link {link.seq}: {problem}")
        items[link.seq] = link
    last_signed = max((seq for seq, item in items.items() if item.service_signature is not None), default=0)
    uncovered = [e.seq for e in entries if e.seq > last_signed]
    if uncovered:
        problems.append(f"entries {uncovered[:5]} are covered by no service signature the receipt carries")
    seqs = sorted(items)
    if seqs and seqs != list(range(seqs[0], seqs[-1] + 1)):
        missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
        problems.append(f"the chain segment is not contiguous: entries {missing[:5]} missing")
    for a, b in itertools.pairwise(seqs):
        if items[b].prev_hash != items[a].entry_hash:
            problems.append(f"entry {b} does not link to entry {a}")
    return problems


def check_receipt(data: dict[str, Any], pinned: Ed25519PublicKey | None = None) -> ReceiptCheck:
    """Check a receipt offline (see module docstring). With ``pinned``, the entries must be signed by that
    service key; without it, by the keys the receipt itself carries (which proves integrity, not who signed)."""
    out = ReceiptCheck(delivery_id=str(data.get("delivery_id")) if isinstance(data, dict) else None)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        out.problems.append(f"not a {FORMAT} receipt")
        return out
    try:
        entries = sorted((LedgerEntry.model_validate(e) for e in data.get("entries", [])), key=lambda e: e.seq)
        links = [Link.model_validate(x) for x in data.get("links", [])]
        keys = {str(kid): load_public_key(str(raw)) for kid, raw in dict(data.get("service_keys", {})).items()}
    except (ValidationError, ValueError, TypeError) as exc:
        out.problems.append(f"malformed receipt: {exc.__class__.__name__}: {str(exc)[:200]}")
        return out
    if pinned is not None:
        keys = {kid: k for kid, k in keys.items() if raw_public(k) == raw_public(pinned)}
        if not keys:
            out.problems.append("no service key in the receipt matches the pinned service key")
    out.problems += _chain(entries, links, keys)
    did = out.delivery_id
    created = [e for e in entries if e.kind == "delivery_created" and e.subject == did]
    if not created:
        out.problems.append(f"the receipt holds no delivery_created entry for {did}")
    if out.problems:
        return out
    made = created[0]
    origin_seq = made.body.get("origin_seq")
    origin = next((e for e in entries if e.seq == origin_seq), None)
    recipient = made.party_id
    if origin is None or origin.seq >= made.seq:
        out.problems.append(f"the receipt does not hold the origin entry {origin_seq} before the delivery")
        return out
    signer = "the service" + (" (pinned key)" if pinned is not None else " (key carried by the receipt, not pinned)")
    out.valid = True
    what = (f"notice {origin.body.get('notice_id')} ({origin.kind}) of operation {origin.subject} version "
            f"{origin.body.get('version')}" if origin.kind != "site_registration"
            else f"the registration of protected site {origin.subject}")
    signed = (f", signed by party {origin.party_id} with key {origin.party_signature.key_id}"
              if origin.party_signature else ", not signed by the party")
    out.proves.append(f"{signer} recorded {what} by {origin.party_id} at {origin.at} (entry {origin.seq}){signed}")
    out.proves.append(f"delivery {did} of it to {recipient} over the {made.body.get('channel')} channel was created "
                      f"at {made.at} (entry {made.seq}); the receipt carries what {recipient} was shown")
    mine = [e for e in entries if e.subject == did and e.seq > made.seq]
    delivered = next((e for e in mine if e.kind == "delivery_delivered"), None)
    escalated = next((e for e in mine if e.kind == "escalation"), None)
    acked = next((e for e in entries if e.kind == "acknowledgement" and did in e.body.get("acknowledges", [])
                  and e.party_id == recipient and e.seq > made.seq), None)
    if delivered is not None:
        out.delivered_at = str(delivered.body.get("delivered_at", delivered.at))
        out.proves.append(f"it was delivered to {recipient} at {out.delivered_at} via {delivered.body.get('via')} "
                          f"(entry {delivered.seq})")
    else:
        out.proves.append("no delivery of it on this channel is recorded in the receipt (NOT proven delivered)")
    if escalated is not None:
        out.proves.append(f"it was escalated over the backup channel at {escalated.at} (entry {escalated.seq})")
    if acked is not None:
        out.acknowledged_at = str(acked.body.get("acked_at", acked.at))
        by = (f"signed by {recipient} with key {acked.party_signature.key_id}" if acked.party_signature
              else "not signed by the party (authenticated by its token)")
        via = "" if acked.subject == did else f" through its escalation {acked.subject}"
        out.proves.append(f"{recipient} acknowledged it (received and understood, not approval){via} at "
                          f"{out.acknowledged_at} (entry {acked.seq}), {by}")
    else:
        out.proves.append("no acknowledgement is recorded in the receipt (NOT proven acknowledged)")
    first, last = entries[0].seq, entries[-1].seq
    out.proves.append(f"in this order, in one unbroken chain from entry {first} to entry {last}")
    return out
