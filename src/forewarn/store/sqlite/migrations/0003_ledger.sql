-- Forewarn schema, version 3: the signed, hash-chained ledger and the parties' signing keys.
-- seq numbers entries 1, 2, 3 ... without gaps (set by the appender, not AUTOINCREMENT); body is JSON, hashed
-- in its RFC 8785 canonical form (its stored formatting does not matter); times are UTC ISO 8601 text with
-- microseconds. forewarn/ledger/chain.py defines the hashes and signatures.
CREATE TABLE ledger_entries (
    seq INTEGER PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    digest TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    party_id TEXT,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    party_signature TEXT,
    party_nonce TEXT,
    service_key_id TEXT NOT NULL,
    service_signature TEXT NOT NULL
);
CREATE INDEX ledger_subject ON ledger_entries(subject, kind);
CREATE INDEX ledger_party ON ledger_entries(party_id, kind);
CREATE INDEX ledger_kind ON ledger_entries(kind);
-- audit queries: what a party was shown of an operation, who received a protected site
CREATE INDEX ledger_operation ON ledger_entries(json_extract(body, '$.operation_id'), party_id);
CREATE INDEX ledger_site ON ledger_entries(json_extract(body, '$.site_id'));
CREATE UNIQUE INDEX ledger_nonce ON ledger_entries(party_id, party_nonce) WHERE party_nonce IS NOT NULL;
CREATE TABLE party_keys (
    key_id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    public_key TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    revoked_at TEXT,
    replaces TEXT
);
CREATE INDEX party_keys_party ON party_keys(party_id, valid_from);
