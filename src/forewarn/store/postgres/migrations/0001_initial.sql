-- Forewarn schema on PostgreSQL, version 1: parties, agreements, sites, operations and their versions, notices.
-- Documents are pydantic JSON in JSONB columns; plain columns hold what queries filter on; times are timestamptz
-- (UTC). Each operation version's volumes are also stored one row each with their footprint as a PostGIS geometry
-- (lon/lat WGS84, SRID 4326) under a GiST index, so that the database can answer "what is planned here, then".
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE parties (
    id TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
CREATE TABLE agreements (
    id TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
CREATE TABLE agreement_parties (
    agreement_id TEXT NOT NULL REFERENCES agreements(id) ON DELETE CASCADE,
    party_id TEXT NOT NULL REFERENCES parties(id),
    PRIMARY KEY (agreement_id, party_id)
);
CREATE TABLE protected_sites (
    id TEXT PRIMARY KEY,
    registered_by TEXT NOT NULL REFERENCES parties(id),
    doc JSONB NOT NULL
);
CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    state TEXT NOT NULL CHECK (state IN ('planned', 'notified', 'active', 'completed', 'cancelled')),
    version INTEGER NOT NULL CHECK (version >= 1),
    activity_class TEXT NOT NULL,
    notified_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX operations_state ON operations(state);
CREATE INDEX operations_party ON operations(party_id);
CREATE TABLE operation_versions (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    version INTEGER NOT NULL,
    doc JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (operation_id, version)
);
CREATE TABLE operation_volumes (
    operation_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    footprint geometry(Geometry, 4326) NOT NULL,
    lower_m DOUBLE PRECISION NOT NULL,
    upper_m DOUBLE PRECISION NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (operation_id, version, idx),
    FOREIGN KEY (operation_id, version) REFERENCES operation_versions(operation_id, version)
);
CREATE INDEX operation_volumes_footprint ON operation_volumes USING GIST (footprint);
CREATE TABLE notices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id TEXT NOT NULL REFERENCES operations(id),
    version INTEGER NOT NULL,
    party_id TEXT NOT NULL REFERENCES parties(id),
    kind TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    outcome JSONB NOT NULL,
    FOREIGN KEY (operation_id, version) REFERENCES operation_versions(operation_id, version)
);
CREATE INDEX notices_operation ON notices(operation_id);
CREATE TABLE conflicts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id BIGINT NOT NULL REFERENCES notices(id),
    operation_a TEXT NOT NULL,
    operation_b TEXT NOT NULL,
    adjusting_operation TEXT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX conflicts_a ON conflicts(operation_a);
CREATE INDEX conflicts_b ON conflicts(operation_b);
CREATE TABLE site_warnings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id BIGINT NOT NULL REFERENCES notices(id),
    site_id TEXT NOT NULL REFERENCES protected_sites(id),
    operation_id TEXT NOT NULL,
    doc JSONB NOT NULL
);
