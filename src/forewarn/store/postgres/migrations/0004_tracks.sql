-- Forewarn schema on PostgreSQL, version 4: live tracks. Units of forewarn.tracks.model (POSIX seconds UTC, WGS84
-- degrees, metres, metres per second, degrees true). Accepted positions are columnar chunks, one row per ingest
-- call (NumPy .npz, no pickled objects). A track's last position is also a PostGIS point (GiST-indexed).
CREATE TABLE track_chunks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    source TEXT NOT NULL,
    t_min DOUBLE PRECISION NOT NULL,
    t_max DOUBLE PRECISION NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX track_chunks_time ON track_chunks(party_id, t_min, t_max);
CREATE TABLE tracks (
    party_id TEXT NOT NULL REFERENCES parties(id),
    track_id TEXT NOT NULL,
    operation_id TEXT REFERENCES operations(id),
    source TEXT NOT NULL,
    conforming BOOLEAN,
    t_s DOUBLE PRECISION NOT NULL,
    lat_deg DOUBLE PRECISION NOT NULL,
    lon_deg DOUBLE PRECISION NOT NULL,
    alt_m DOUBLE PRECISION,
    gs_mps DOUBLE PRECISION,
    track_deg DOUBLE PRECISION,
    vs_mps DOUBLE PRECISION,
    callsign TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    position geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon_deg, lat_deg), 4326)) STORED,
    PRIMARY KEY (party_id, track_id)
);
CREATE INDEX tracks_position ON tracks USING GIST (position);
CREATE TABLE track_alerts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    encounter TEXT,
    at TIMESTAMPTZ NOT NULL,
    party_id TEXT NOT NULL REFERENCES parties(id),
    track_id TEXT NOT NULL,
    open BOOLEAN NOT NULL DEFAULT FALSE,
    doc JSONB NOT NULL
);
CREATE INDEX track_alerts_open ON track_alerts(encounter) WHERE open;
CREATE INDEX track_alerts_party ON track_alerts(party_id, at);
CREATE TABLE feed_quality (
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (source, reason)
);
