-- Forewarn schema, version 2: credentials, the issuer key, deliveries (the outbox), idempotency, subscriptions.
CREATE TABLE credentials (
    client_id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    doc TEXT NOT NULL
);
CREATE INDEX credentials_party ON credentials(party_id);
CREATE TABLE issuer_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    notice_id INTEGER REFERENCES notices(id),
    party_id TEXT NOT NULL REFERENCES parties(id),
    channel TEXT NOT NULL CHECK (channel IN ('primary', 'backup')),
    reason TEXT NOT NULL,
    escalation_of TEXT,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    first_sent_at TEXT,
    delivered_at TEXT,
    acked_at TEXT,
    ack_deadline TEXT,
    escalated_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    lead_time_s REAL,
    min_notice_s REAL,
    late INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_party ON deliveries(party_id, seq);
CREATE INDEX deliveries_pending ON deliveries(delivered_at, next_attempt_at);
CREATE INDEX deliveries_deadline ON deliveries(acked_at, escalated_at, ack_deadline);
CREATE TABLE idempotency (
    party_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (party_id, key)
);
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    doc TEXT NOT NULL
);
