-- Forewarn schema, version 1. Documents are pydantic JSON, columns hold what queries filter on.
CREATE TABLE parties (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE agreements (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE agreement_parties (
    agreement_id TEXT NOT NULL REFERENCES agreements(id) ON DELETE CASCADE,
    party_id TEXT NOT NULL REFERENCES parties(id),
    PRIMARY KEY (agreement_id, party_id)
);
CREATE TABLE protected_sites (
    id TEXT PRIMARY KEY,
    registered_by TEXT NOT NULL REFERENCES parties(id),
    doc TEXT NOT NULL
);
CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    state TEXT NOT NULL CHECK (state IN ('planned', 'notified', 'active', 'completed', 'cancelled')),
    version INTEGER NOT NULL CHECK (version >= 1),
    activity_class TEXT NOT NULL,
    notified_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX operations_state ON operations(state);
CREATE TABLE operation_versions (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    created_at TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    PRIMARY KEY (operation_id, version)
);
CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    version INTEGER NOT NULL,
    party_id TEXT NOT NULL REFERENCES parties(id),
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    FOREIGN KEY (operation_id, version) REFERENCES operation_versions(operation_id, version)
);
CREATE INDEX notices_operation ON notices(operation_id);
CREATE TABLE conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    operation_a TEXT NOT NULL,
    operation_b TEXT NOT NULL,
    adjusting_operation TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX conflicts_a ON conflicts(operation_a);
CREATE INDEX conflicts_b ON conflicts(operation_b);
CREATE TABLE site_warnings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    site_id TEXT NOT NULL REFERENCES protected_sites(id),
    operation_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
