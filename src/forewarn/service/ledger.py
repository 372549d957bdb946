"""The ledger as the service uses it: append entries inside a use case's transaction, check party signatures,
manage party keys, verify the chain, answer audit questions. Storage is the :class:`Repository`.

The service key that signs entries is the service's Ed25519 **token issuer key** (its key file; the
``issuer_keys`` table keeps every key's public half), the one published at ``GET /v1/keys``: one service
identity. Entries name the key id that signed them, so an
issuer-key rotation keeps old entries verifiable (every stored issuer key is a verifier). A chain re-signed
by someone who swapped the stored key is caught by pinning the service public key (``ledger verify
--service-key``, ``check-receipt --service-key``).

Append cost: one index lookup of the head (once per transaction) and one INSERT, plus hashing (the body is
serialised once: its canonical JSON is hashed and kept); one Ed25519 signature and one UPDATE per transaction
(the checkpoint); no read of the chain. :meth:`Ledger.append_many` writes a batch (a notice's deliveries) with
one batched INSERT. Concurrent appenders are serialised by the store's write transaction (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic_core import to_jsonable_python

from forewarn.core.records import Delivery
from forewarn.errors import Forbidden, ForewarnError, InvalidInput, NotFound, Unauthenticated
from forewarn.ledger.chain import GENESIS, ChainReport, LedgerEntry, ServiceSigner, sealed, verify_chain
from forewarn.ledger.keys import (
    PartyKey,
    PartySignature,
    body_digest,
    key_id_of,
    load_public_key,
    raw_public,
    verify_party_signature,
)
from forewarn.service.ledger_tally import DisclosureTally, RejectionTally
from forewarn.service.submissions import Submission, SubmissionAddress
from forewarn.service.tokens import IssuerKey, public_key_from_pem
from forewarn.store.repository import Repository

BodyCheck = Callable[[dict[str, Any]], str | None]
"""Checks that a signed body describes the submission; returns what is wrong, or None."""


class Draft(NamedTuple):
    """One entry to append (:meth:`Ledger.append_many`): its kind, subject, JSON-ready body (datetimes are made
    ISO 8601 text), the party it concerns, that party's accepted signature, and the entry's time (UTC) when it is
    not the batch's ``now`` (a stream send recorded after the moment it happened)."""

    kind: str
    subject: str
    body: dict[str, Any]
    party_id: str | None = None
    party_signature: PartySignature | None = None
    at: datetime | None = None


class Ledger:
    """Append-only signed record bound to a repository (see module docstring)."""

    def __init__(self, repo: Repository, addresses: SubmissionAddress | None = None,
                 summary_period_s: float = 60.0) -> None:
        self.repo = repo
        self.disclosures = DisclosureTally(summary_period_s)
        """Which disclosures of read paths to write (:mod:`forewarn.service.ledger_tally`)."""
        self.rejections = RejectionTally(summary_period_s)
        """Which refused party signatures to write (:mod:`forewarn.service.ledger_tally`)."""
        self.addresses = addresses
        """Where each kind of submission is addressed (a face's method and path), to check what a party signed;
        without it, signed submissions are refused."""
        self._signer: ServiceSigner | None = None

    # ------------------------------------------------------------------ keys of the service
    def signer(self, now: datetime) -> ServiceSigner:
        """The service key (the issuer key; generated and stored at ``now`` if there is none yet). A key just
        generated is not cached until it is read back committed, so a rolled-back first append loses nothing."""
        if self._signer is not None:
            return self._signer
        stored = self.repo.get_issuer_key()
        if stored is None:
            key = IssuerKey.generate()
            with self.repo.transaction():
                self.repo.put_issuer_key(key.kid, key.private_pem(), now)
            return ServiceSigner(key.kid, key.private)
        loaded = IssuerKey.from_pem(*stored)
        self._signer = ServiceSigner(loaded.kid, loaded.private)
        return self._signer

    def service_keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> public key of every service key that may have signed entries."""
        return {kid: public_key_from_pem(pem) for kid, pem in self.repo.list_issuer_keys()}

    # ------------------------------------------------------------------ appending
    def append(self, kind: str, subject: str, body: dict[str, Any], now: datetime, *, party_id: str | None = None,
               party_signature: PartySignature | None = None) -> LedgerEntry:
        """Append one entry at ``now`` (UTC) and return it. Joins the caller's transaction if one is open (so the
        entry commits or rolls back with the change it records). ``body`` is made JSON-ready (datetimes become
        ISO 8601 text); ``party_signature`` must already be accepted (:meth:`accept`). The entry is appended
        unsigned; just before the transaction commits, its last entry is signed (the checkpoint that covers
        the others: see :mod:`forewarn.ledger.chain`)."""
        return self.append_many([Draft(kind, subject, body, party_id, party_signature)], now)[0]

    def append_many(self, drafts: Sequence[Draft], now: datetime) -> list[LedgerEntry]:
        """Append several entries at ``now`` (each at its own ``at`` if it has one) in this order, as
        :meth:`append` does one: one read of the head, one batched INSERT, one checkpoint (a notice owing 50
        deliveries writes its 50 entries so). The service key is the one valid at ``now``."""
        if not drafts:
            return []
        bodies = []
        for draft in drafts:
            data = to_jsonable_python(draft.body)
            if not isinstance(data, dict):
                raise TypeError("a ledger body is a JSON object")
            bodies.append(data)
        with self.repo.transaction():
            signer = self.signer(now)
            head = self.repo.ledger_head()
            seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
            first = seq
            made: list[tuple[LedgerEntry, str]] = []
            for draft, data in zip(drafts, bodies, strict=True):
                entry, body_json = sealed(None, seq, prev, draft.kind, draft.subject, draft.party_id,
                                          draft.at or now, data, draft.party_signature)
                made.append((entry, body_json))
                seq, prev = seq + 1, entry.entry_hash
            self.repo.add_ledger_entries(made)
            self.repo.before_commit("ledger-checkpoint", lambda: self._checkpoint(signer, first))
        return [entry for entry, _ in made]

    def record_deliveries(self, deliveries: Sequence[Delivery], origin_seq: int, now: datetime,
                          operation_id: str | None = None, site_id: str | None = None) -> None:
        """Inside the caller's transaction: one ``delivery_created`` entry per delivery, with what it shows and
        the entry it comes from (``origin_seq``: the notice, site registration or escalated delivery)."""
        self.append_many([Draft("delivery_created", d.id, {
            "delivery_id": d.id, "notice_id": d.notice_id, "origin_seq": origin_seq, "operation_id": operation_id,
            "site_id": site_id, "channel": d.channel, "reason": d.reason, "escalation_of": d.escalation_of,
            "ack_deadline": d.ack_deadline, "lead_time_s": d.lead_time_s, "late": d.late, "payload": d.payload,
        }, d.party_id) for d in deliveries], now)

    def _checkpoint(self, signer: ServiceSigner, first_seq: int) -> None:
        """Before COMMIT: sign the head if this transaction appended it (its entries from ``first_seq`` on may
        all have been rolled back to a savepoint)."""
        head = self.repo.ledger_head()
        if head is not None and head[0] >= first_seq:
            self.repo.sign_ledger_entry(head[0], signer.kid, signer.sign(head[1]))

    # ------------------------------------------------------------------ party signatures
    def accept(self, sig: PartySignature | None, acting_party: str, submission: Submission, now: datetime,
               body_check: BodyCheck | None = None) -> PartySignature | None:
        """Check a party's signature of ``submission`` by ``acting_party`` at ``now``; return the form to keep in
        the ledger (or None when unsigned). On failure the rejection is recorded in the ledger (its own
        transaction: call this **outside** the use case's transaction; aggregated per party and period, so a
        flood of forgeries writes a bounded number of entries: :class:`RejectionTally`) and the error raised:

        * forbidden: signed for another party, or with a key of another party (submitting on another's behalf);
        * unauthenticated: unknown key, key revoked (or not yet valid) at ``now``, or a signature that does not
          verify (forged or altered);
        * invalid_input: signed for another request (method/path/body), or a nonce already used (a replay).
        """
        if sig is None:
            return None
        if self.addresses is None:
            raise InvalidInput("this service was built without submission addresses: it takes no signed "
                               "submissions")
        method, path = self.addresses(submission)
        try:
            return self._check(sig, acting_party, method, path, now, body_check)
        except ForewarnError as exc:
            tally = self.rejections.count(acting_party, now)
            if tally is not None:
                self.append("rejection", submission.subject, {
                    "code": exc.code, "message": exc.message, "method": method, "path": path, "key_id": sig.key_id,
                    "nonce": sig.nonce, "signed_for": sig.party_id, "body_sha256": sig.body_sha256,
                } | tally, now, party_id=acting_party)
            raise

    def _check(self, sig: PartySignature, acting: str, method: str, path: str, now: datetime,
               body_check: BodyCheck | None) -> PartySignature:
        if sig.party_id != acting:
            raise Forbidden(f"the request is signed for party {sig.party_id} but submitted by {acting}",
                            {"signed_for": sig.party_id})
        key = self.repo.get_party_key(sig.key_id)
        if key is None:
            raise Unauthenticated(f"unknown signing key {sig.key_id}", {"key_id": sig.key_id})
        if key.party_id != acting:
            raise Forbidden(f"key {sig.key_id} belongs to another party: no party may sign on another's behalf",
                            {"key_id": sig.key_id})
        if not key.valid_at(now):
            when = key.revoked_at.isoformat() if key.revoked_at else key.valid_from.isoformat()
            state = "was revoked at" if key.revoked_at is not None and now >= key.revoked_at else "is valid from"
            raise Unauthenticated(f"key {sig.key_id} {state} {when}", {"key_id": sig.key_id})
        if sig.method.upper() != method.upper() or sig.path != path:
            raise InvalidInput(f"the signature is for {sig.method} {sig.path}, not {method} {path}",
                               {"signed": f"{sig.method} {sig.path}"})
        if sig.body is None or body_digest(sig.body) != sig.body_sha256:
            raise InvalidInput("the submitted body does not match the signed body digest")
        problem = body_check(sig.body) if body_check is not None else None
        if problem is not None:
            raise InvalidInput(f"the signed body does not describe this submission: {problem}")
        if not verify_party_signature(sig, key.public_key):
            raise Unauthenticated("the party signature does not verify with the party's registered key "
                                  "(forged or altered)", {"key_id": sig.key_id})
        if self.repo.ledger_nonce_used(acting, sig.nonce):
            raise InvalidInput("this signed request was already submitted (nonce reused: a replay)",
                               {"nonce": sig.nonce})
        return sig.stored(key.public_key)

    # ------------------------------------------------------------------ party keys
    def register_key(self, party_id: str, public_key: str, now: datetime, *, replaces: str | None = None,
                     ) -> PartyKey:
        """Register an Ed25519 public key (base64url raw or PEM) for ``party_id``, valid from ``now``; recorded.
        A key registered once (even revoked since) cannot be registered again."""
        if self.repo.get_party(party_id) is None:
            raise NotFound(f"no party {party_id}", {"party_id": party_id})
        loaded = load_public_key(public_key)
        key = PartyKey(key_id=key_id_of(loaded), party_id=party_id, public_key=raw_public(loaded), valid_from=now,
                       replaces=replaces)
        with self.repo.transaction():
            if self.repo.get_party_key(key.key_id) is not None:
                raise InvalidInput(f"key {key.key_id} is already registered (a key is registered once)",
                                   {"key_id": key.key_id})
            self.repo.put_party_key(key)
            self.append("key_registered", key.key_id, key.model_dump(mode="json"), now, party_id=party_id)
        return key

    def revoke_key(self, party_id: str, key_id: str, now: datetime) -> PartyKey:
        """Revoke a key of ``party_id`` at ``now``: signatures checked from then on are refused; recorded."""
        with self.repo.transaction():
            key = self.repo.get_party_key(key_id)
            if key is None or key.party_id != party_id:
                raise NotFound(f"no key {key_id} of party {party_id}", {"key_id": key_id})
            if key.revoked_at is not None:
                raise InvalidInput(f"key {key_id} was already revoked at {key.revoked_at.isoformat()}")
            revoked = key.model_copy(update={"revoked_at": now})
            self.repo.put_party_key(revoked)
            self.append("key_revoked", key_id, revoked.model_dump(mode="json"), now, party_id=party_id)
        return revoked

    def rotate_key(self, party_id: str, old_key_id: str, public_key: str, now: datetime) -> PartyKey:
        """Replace a key: the old one is revoked at ``now`` and the new one valid from ``now`` (one transaction)."""
        with self.repo.transaction():
            self.revoke_key(party_id, old_key_id, now)
            return self.register_key(party_id, public_key, now, replaces=old_key_id)

    # ------------------------------------------------------------------ verification
    def holds(self, seq: int, entry_hash: str) -> bool:
        """Whether entry ``seq`` is in the chain with hash ``entry_hash`` (hex): a head published earlier."""
        found = self.repo.ledger_links(seq, seq)
        return bool(found) and found[0].entry_hash == entry_hash

    def party_keys(self, party_id: str | None = None) -> list[PartyKey]:
        """The parties' signing keys (one party's, or every party's) with their history."""
        return self.repo.list_party_keys(party_id)

    def verify(self, pinned: Sequence[Ed25519PublicKey] | None = None) -> ChainReport:
        """Verify the whole chain (see :func:`~forewarn.ledger.chain.verify_chain`) and every kept party
        signature against the key registry. With ``pinned``, only those service keys are trusted."""
        keys = self.service_keys()
        if pinned is not None:
            allowed = {raw_public(k) for k in pinned}
            keys = {kid: k for kid, k in keys.items() if raw_public(k) in allowed}
        registry = {k.key_id: k for k in self.repo.list_party_keys()}

        def party_check(entry: LedgerEntry) -> str | None:
            sig = entry.party_signature
            if sig is None:
                return None
            key = registry.get(sig.key_id)
            if key is None or key.public_key != sig.public_key or key.party_id != sig.party_id:
                return f"its party signature names key {sig.key_id}, which is not that party's registered key"
            if not key.valid_at(entry.time):
                return f"its party signature was made with key {sig.key_id} outside the key's validity"
            return None

        return verify_chain(self.repo.iter_ledger(), keys, party_check)

    # ------------------------------------------------------------------ audit
    def delivery_trail(self, delivery_id: str) -> list[LedgerEntry]:
        """Every entry about one delivery: created, sent, delivered, failed attempts, escalation, and the
        acknowledgements that cover it (its own or its escalation's); ascending seq."""
        own = self.repo.find_ledger(subject=delivery_id, kinds=[
            "delivery_created", "delivery_sent", "delivery_delivered", "delivery_attempt_failed", "escalation",
            "acknowledgement"])
        escalations = [str(e.body.get("escalation_id")) for e in own if e.kind == "escalation"]
        via = [a for esc in escalations for a in self.repo.find_ledger(subject=esc, kinds=["acknowledgement"])
               if delivery_id in a.body.get("acknowledges", [])]
        return sorted({e.seq: e for e in own + via}.values(), key=lambda e: e.seq)

    def _delivery_times(self, delivery_id: str) -> dict[str, Any]:
        trail = self.delivery_trail(delivery_id)
        delivered = [e for e in trail if e.kind == "delivery_delivered"]
        acked = [e for e in trail if e.kind == "acknowledgement"]
        return {"delivered_at": delivered[0].at if delivered else None,
                "acknowledged_at": acked[0].at if acked else None,
                "acknowledged_by_party_signature": bool(acked and acked[0].party_signature is not None),
                "ledger_seqs": [e.seq for e in trail]}

    def shown(self, party_id: str, operation_id: str) -> list[dict[str, Any]]:
        """What ``party_id`` was shown of ``operation_id`` and when: every delivery created for it about that
        operation (with the operation as the policy let it see it, and when it was delivered and acknowledged)
        and every disclosure recorded by a read path (an entry per read before issue 20's aggregation, an entry
        listing several operations since); ascending seq."""
        out: list[dict[str, Any]] = []
        for e in self.repo.find_ledger(kinds=["delivery_created"], party_id=party_id,
                                       body_equals={"operation_id": operation_id}):
            payload = e.body.get("payload", {})
            out.append({"seq": e.seq, "kind": e.kind, "recorded_at": e.at, "delivery_id": e.subject,
                        "channel": e.body.get("channel"), "reason": e.body.get("reason"),
                        "notice_kind": payload.get("kind"), "shown": payload.get("operation")}
                       | self._delivery_times(e.subject))
        for e in self.repo.find_ledger(kinds=["disclosure"], party_id=party_id):
            listed = e.body.get("operations")
            views = ([o.get("view") for o in listed if isinstance(o, dict) and o.get("operation_id") == operation_id]
                     if isinstance(listed, list) else [e.body.get("view")] if e.body.get("operation_id") == operation_id
                     else [])
            out.extend({"seq": e.seq, "kind": e.kind, "recorded_at": e.at, "via": e.body.get("via"), "shown": v}
                       for v in views)
        return sorted(out, key=lambda row: int(row["seq"]))

    def site_receipts(self, site_id: str) -> dict[str, Any]:
        """Which parties received the registration of protected site ``site_id`` (each registration or update)
        and acknowledged it, when; from the ledger alone."""
        registrations = self.repo.find_ledger(kinds=["site_registration"], subject=site_id)
        deliveries = self.repo.find_ledger(kinds=["delivery_created"], body_equals={"site_id": site_id})
        return {
            "site_id": site_id,
            "registrations": [{"seq": e.seq, "at": e.at, "party_id": e.party_id} for e in registrations],
            "recipients": [{"party_id": e.party_id, "delivery_id": e.subject, "channel": e.body.get("channel"),
                            "origin_seq": e.body.get("origin_seq"), "created_at": e.at}
                           | self._delivery_times(e.subject) for e in deliveries],
        }
