-- Forewarn schema on PostgreSQL, version 2: credentials, the issuer key, deliveries (the outbox), idempotency,
-- subscriptions. A delivery's seq is taken under a transaction-level advisory lock held until COMMIT (see
-- store/postgres/outbox.py), so seq order is commit order even across processes: a stream resuming after seq N
-- never misses a delivery committed later with a smaller number.
CREATE TABLE credentials (
    client_id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    doc JSONB NOT NULL
);
CREATE INDEX credentials_party ON credentials(party_id);
CREATE TABLE issuer_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    notice_id BIGINT REFERENCES notices(id),
    party_id TEXT NOT NULL REFERENCES parties(id),
    channel TEXT NOT NULL CHECK (channel IN ('primary', 'backup')),
    reason TEXT NOT NULL,
    escalation_of TEXT,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    first_sent_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    acked_at TIMESTAMPTZ,
    ack_deadline TIMESTAMPTZ,
    escalated_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_error TEXT,
    lead_time_s DOUBLE PRECISION,
    min_notice_s DOUBLE PRECISION,
    late BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX deliveries_party ON deliveries(party_id, seq);
CREATE INDEX deliveries_pending ON deliveries(next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX deliveries_deadline ON deliveries(ack_deadline)
    WHERE channel = 'primary' AND acked_at IS NULL AND escalated_at IS NULL;
CREATE TABLE idempotency (
    party_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (party_id, key)
);
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    doc JSONB NOT NULL
);
