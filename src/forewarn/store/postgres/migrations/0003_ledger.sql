-- Forewarn schema on PostgreSQL, version 3: the signed, hash-chained ledger and the parties' signing keys.
-- seq numbers entries 1, 2, 3 ... without gaps (set by the appender under a transaction-level advisory lock, so
-- there is one chain across processes). body is kept as the exact JSON text the ledger hashed (TEXT, not JSONB:
-- JSONB would re-format numbers and refuse some strings); the fields audits look up (operation_id, site_id) are
-- copied into indexed columns, others are read with body::json. at is the hashed UTC text.
CREATE TABLE ledger_entries (
    seq BIGINT PRIMARY KEY CHECK (seq >= 1),
    prev_hash TEXT NOT NULL,
    digest TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    party_id TEXT,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    operation_id TEXT,
    site_id TEXT,
    party_signature TEXT,
    party_nonce TEXT,
    service_key_id TEXT NOT NULL,
    service_signature TEXT NOT NULL
);
CREATE INDEX ledger_subject ON ledger_entries(subject, kind);
CREATE INDEX ledger_party ON ledger_entries(party_id, kind);
CREATE INDEX ledger_kind ON ledger_entries(kind);
CREATE INDEX ledger_operation ON ledger_entries(operation_id, party_id) WHERE operation_id IS NOT NULL;
CREATE INDEX ledger_site ON ledger_entries(site_id) WHERE site_id IS NOT NULL;
CREATE INDEX ledger_signed ON ledger_entries(seq) WHERE service_signature <> '';
CREATE UNIQUE INDEX ledger_nonce ON ledger_entries(party_id, party_nonce) WHERE party_nonce IS NOT NULL;
CREATE TABLE party_keys (
    key_id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    public_key TEXT NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    replaces TEXT
);
CREATE INDEX party_keys_party ON party_keys(party_id, valid_from);
