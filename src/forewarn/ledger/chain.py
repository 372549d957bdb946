"""The hash-chained, signed ledger entry: hashing, the service signature, and chain verification (no I/O).

An entry has a sequence number ``seq`` (1, 2, 3, ... without gaps), a ``kind`` (see :data:`KINDS`), a
``subject`` (an operation, delivery, site, key ... id), the ``party_id`` it concerns (the filer, the
recipient, the acknowledger, the viewer), a JSON ``body``, the time ``at`` (UTC) and, when the party signed
what it submitted, the party's :class:`~forewarn.ledger.keys.PartySignature`. Two hashes chain it:

* ``digest = SHA-256(JCS({"kind", "subject", "party_id", "at", "body", "party_signature"}))`` — the content;
* ``entry_hash = SHA-256(JCS({"seq", "prev", "digest"}))`` where ``prev`` is the previous entry's
  ``entry_hash`` (64 zeros for the first entry).

So the entry hash covers the sequence number, the previous hash and the whole content, and a receipt can
prove the order of two entries by giving, for every entry between them, only ``(seq, prev, digest,
entry_hash)`` — nothing of their content.

The service signs the **last entry of every transaction** (a checkpoint): an Ed25519 signature (base64url) over
the ASCII bytes ``"forewarn-ledger/1:" + entry_hash`` (the prefix keeps these signatures apart from the JWTs
the same key signs). The other entries of the transaction carry no signature of their own
(``service_key_id``/``service_signature`` are None): the signed entry hash covers them through the chain of
``prev`` hashes, so changing any of them changes every hash up to the checkpoint and breaks its signature. A
filing that owes 50 deliveries is one signature, not 151. Verification requires every entry to be followed
(at or after it) by a valid signature: unsigned entries at the head are reported. Times are written
``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` (UTC, microseconds).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from forewarn.ledger.canonical import b64url, canonical_json, digest, sha256_hex, unb64url
from forewarn.ledger.keys import PartySignature, verify_party_signature

GENESIS = "0" * 64
"""The ``prev`` of the first entry."""

SIGNATURE_PREFIX = b"forewarn-ledger/1:"

KINDS = (
    "notice", "amendment", "cancellation", "activation", "completion", "site_registration", "agreement",
    "delivery_created", "delivery_sent", "delivery_delivered", "delivery_attempt_failed", "acknowledgement",
    "escalation", "alert", "disclosure", "key_registered", "key_revoked", "rejection", "party_disabled",
    "party_enabled", "credential_revoked",
)
"""The kinds the service writes; other lowercase names (``[a-z][a-z0-9_]*``, at most 40) are accepted too."""

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def utc_text(at: datetime) -> str:
    """A UTC time as fixed-width ISO 8601 text with microseconds (naive times are refused)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("ledger times must be timezone-aware (UTC)")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def content_bytes(kind: str, subject: str, party_id: str | None, at: str, body_json: bytes,
                  party_signature: PartySignature | None) -> bytes:
    """The canonical JSON of an entry's content ``{"at", "body", "kind", "party_id", "party_signature",
    "subject"}`` (``at`` as :func:`utc_text`), assembled around ``body_json``, the canonical JSON of the body
    computed once by the caller (which the store also keeps). RFC 8785 is compositional: an object's form is
    its members' forms in key order, so this is byte for byte the canonical JSON of the whole object."""
    signature = canonical_json(party_signature.model_dump(mode="json")) if party_signature else b"null"
    return b"".join((
        b'{"at":', canonical_json(at), b',"body":', body_json, b',"kind":', canonical_json(kind),
        b',"party_id":', canonical_json(party_id), b',"party_signature":', signature,
        b',"subject":', canonical_json(subject), b"}",
    ))


def content_digest(kind: str, subject: str, party_id: str | None, at: str, body: Mapping[str, Any],
                   party_signature: PartySignature | None) -> str:
    """SHA-256 (hex) of the canonical content of an entry (``at`` as :func:`utc_text`)."""
    return sha256_hex(content_bytes(kind, subject, party_id, at, canonical_json(dict(body)), party_signature))


_HEX64 = re.compile(r"[0-9a-f]{64}")


def link_hash(seq: int, prev: str, content: str) -> str:
    """The entry hash: SHA-256 (hex) of the canonical ``{"seq", "prev", "digest"}`` (written out directly when
    both hashes are 64 lowercase hex digits, which need no escaping; anything else, as read from a tampered
    store, goes through the canonical serialiser)."""
    if type(seq) is int and 0 <= seq <= 2**53 - 1 and _HEX64.fullmatch(prev) and _HEX64.fullmatch(content):
        return sha256_hex(f'{{"digest":"{content}","prev":"{prev}","seq":{seq}}}'.encode("ascii"))
    return digest({"seq": seq, "prev": prev, "digest": content})


class LedgerEntry(BaseModel):
    """One signed, chained entry (see module docstring). ``at`` is UTC text (:func:`utc_text`)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    prev_hash: str
    digest: str
    entry_hash: str
    kind: str
    subject: str
    party_id: str | None
    at: str
    body: dict[str, Any]
    party_signature: PartySignature | None = None
    service_key_id: str | None = None
    service_signature: str | None = None
    """The service's signature of ``entry_hash``; None on an entry a later checkpoint covers."""

    @property
    def signed(self) -> bool:
        return self.service_signature is not None

    @property
    def time(self) -> datetime:
        """``at`` as a datetime (UTC)."""
        return datetime.fromisoformat(self.at)

    def recomputed_digest(self) -> str:
        return content_digest(self.kind, self.subject, self.party_id, self.at, self.body, self.party_signature)

    def link(self) -> Link:
        return Link(seq=self.seq, prev_hash=self.prev_hash, digest=self.digest, entry_hash=self.entry_hash,
                    service_key_id=self.service_key_id, service_signature=self.service_signature)


class Link(BaseModel):
    """An entry reduced to what proves its place in the chain, nothing of its content; with its service
    signature when it is a checkpoint (a receipt carries the checkpoint that covers its entries)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    prev_hash: str
    digest: str
    entry_hash: str
    service_key_id: str | None = None
    service_signature: str | None = None


@dataclass(frozen=True)
class ServiceSigner:
    """The service's Ed25519 key that signs ledger entries (the token issuer key, see ``Ledger``)."""

    kid: str
    private: Ed25519PrivateKey

    def sign(self, entry_hash: str) -> str:
        return b64url(self.private.sign(SIGNATURE_PREFIX + entry_hash.encode("ascii")))

    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def seal(signer: ServiceSigner | None, seq: int, prev: str, kind: str, subject: str, party_id: str | None,
         at: datetime, body: Mapping[str, Any], party_signature: PartySignature | None) -> LedgerEntry:
    """Build the entry that follows ``(seq - 1, prev)``: hash it, and sign it when a ``signer`` is given (else
    a later checkpoint of its transaction covers it)."""
    return sealed(signer, seq, prev, kind, subject, party_id, at, body, party_signature)[0]


def sealed(signer: ServiceSigner | None, seq: int, prev: str, kind: str, subject: str, party_id: str | None,
           at: datetime, body: Mapping[str, Any], party_signature: PartySignature | None,
           ) -> tuple[LedgerEntry, str]:
    """:func:`seal`, and the canonical JSON text of the body it hashed (for the store to keep: the body is
    serialised once per entry)."""
    if not KIND_PATTERN.match(kind):
        raise ValueError(f"ledger kind {kind!r} must match {KIND_PATTERN.pattern}")
    at_text = utc_text(at)
    data = dict(body)
    body_json = canonical_json(data)
    content = sha256_hex(content_bytes(kind, subject, party_id, at_text, body_json, party_signature))
    entry_hash = link_hash(seq, prev, content)
    entry = LedgerEntry(seq=seq, prev_hash=prev, digest=content, entry_hash=entry_hash, kind=kind, subject=subject,
                        party_id=party_id, at=at_text, body=data, party_signature=party_signature,
                        service_key_id=signer.kid if signer else None,
                        service_signature=signer.sign(entry_hash) if signer else None)
    return entry, body_json.decode("utf-8")


def service_signature_ok(entry_hash: str, signature: str, key: Ed25519PublicKey) -> bool:
    """Whether ``signature`` is the service's signature of ``entry_hash`` under ``key``."""
    try:
        key.verify(unb64url(signature), SIGNATURE_PREFIX + entry_hash.encode("ascii"))
    except (InvalidSignature, ValueError):
        return False
    except Exception:  # malformed base64 from a tampered row is just a bad signature
        return False
    return True


def checkpoint_problem(item: LedgerEntry | Link, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """What is wrong with the service signature an entry or link carries (None when it carries none: a later
    checkpoint must cover it, which :func:`verify_chain` and receipts check)."""
    if item.service_signature is None and item.service_key_id is None:
        return None
    key = keys.get(item.service_key_id or "")
    if key is None:
        return f"it is signed with an unknown service key {item.service_key_id!r}"
    if item.service_signature is None or not service_signature_ok(item.entry_hash, item.service_signature, key):
        return "its service signature does not verify (forged)"
    return None


def entry_problem(entry: LedgerEntry, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """What is wrong with one entry on its own (content digest, entry hash, signatures), or None."""
    if entry.recomputed_digest() != entry.digest:
        return "its content does not match its digest (changed)"
    if link_hash(entry.seq, entry.prev_hash, entry.digest) != entry.entry_hash:
        return "its hash does not match its sequence number, previous hash and digest (changed or reordered)"
    problem = checkpoint_problem(entry, keys)
    if problem is not None:
        return problem
    sig = entry.party_signature
    if sig is not None:
        if sig.public_key is None or not verify_party_signature(sig, sig.public_key):
            return "the party signature it keeps does not verify"
        if sig.party_id != entry.party_id:
            return "the party signature it keeps is of another party"
    return None


@dataclass
class ChainReport:
    """The result of verifying a chain: entries checked, the head, and the first bad entry if any."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    first_bad: int | None = None
    problem: str | None = None
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "first_bad": self.first_bad, "problem": self.problem, "kinds": dict(sorted(self.kinds.items()))}


def verify_chain(entries: Iterable[LedgerEntry], keys: Mapping[str, Ed25519PublicKey],
                 party_key_check: Callable[[LedgerEntry], str | None] | None = None) -> ChainReport:
    """Check entries in stored order (ascending ``seq``): numbering from 1 without gaps, each ``prev_hash``
    equal to the previous entry's hash, each digest, hash and signature (see :func:`entry_problem`), and every
    entry covered by a checkpoint at or after it (the head must be signed).
    ``party_key_check(entry) -> str | None`` may add a check of party signatures against the key registry.
    Stops at the first bad entry and names it; any change, deletion, insertion or reordering of stored
    entries shows up as one of these. Deleting entries at the *end* leaves a shorter valid chain: compare the
    head with one published earlier (``head_seq``/``head_hash``) to detect it."""
    report = ChainReport()
    prev = GENESIS
    expected = 1
    uncovered: int | None = None  # the first entry since the last checkpoint
    for entry in entries:
        problem: str | None = None
        if entry.seq > expected:
            problem = f"entry {expected} is missing (deleted, or later entries renumbered)"
            bad = expected
        elif entry.seq < expected:
            problem = f"entry {entry.seq} appears twice or out of order"
            bad = entry.seq
        else:
            bad = entry.seq
            if entry.prev_hash != prev:
                problem = (f"its previous hash does not match entry {entry.seq - 1} (inserted, deleted or "
                           "reordered entries)")
            else:
                problem = entry_problem(entry, keys)
                if problem is None and party_key_check is not None:
                    problem = party_key_check(entry)
        if problem is not None:
            report.first_bad, report.problem = bad, problem
            return report
        report.entries += 1
        report.kinds[entry.kind] = report.kinds.get(entry.kind, 0) + 1
        report.head_seq, report.head_hash = entry.seq, entry.entry_hash
        prev = entry.entry_hash
        expected += 1
        uncovered = None if entry.signed else (entry.seq if uncovered is None else uncovered)
    if uncovered is not None:
        report.first_bad = uncovered
        report.problem = (f"entries {uncovered} to {report.head_seq} carry no service signature and no signed "
                          "entry after them covers them (the head is not signed: appended outside the service, "
                          "or a signed head deleted)")
    return report
