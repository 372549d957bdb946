-- Forewarn schema, version 4: live tracks. Positions in the units of forewarn.tracks.model (POSIX seconds UTC,
-- WGS84 degrees, metres, metres per second, degrees true); alerts as JSON documents with their open/cleared state.
-- Accepted positions are stored as columnar chunks, one row per ingest call: the arrays of the batch (NumPy .npz,
-- no pickled objects) with the time span and size, so that storing costs one INSERT per batch, not per position.
CREATE TABLE track_chunks (
    id INTEGER PRIMARY KEY,
    party_id TEXT NOT NULL REFERENCES parties(id),
    source TEXT NOT NULL,
    t_min REAL NOT NULL,
    t_max REAL NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX track_chunks_time ON track_chunks(party_id, t_min, t_max);
CREATE TABLE tracks (
    party_id TEXT NOT NULL REFERENCES parties(id),
    track_id TEXT NOT NULL,
    operation_id TEXT REFERENCES operations(id),
    source TEXT NOT NULL,
    conforming INTEGER,
    t_s REAL NOT NULL,
    lat_deg REAL NOT NULL,
    lon_deg REAL NOT NULL,
    alt_m REAL,
    gs_mps REAL,
    track_deg REAL,
    vs_mps REAL,
    callsign TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (party_id, track_id)
);
CREATE TABLE track_alerts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    encounter TEXT,
    at TEXT NOT NULL,
    party_id TEXT NOT NULL REFERENCES parties(id),
    track_id TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE INDEX track_alerts_open ON track_alerts(open, encounter);
CREATE INDEX track_alerts_party ON track_alerts(party_id, at);
CREATE TABLE feed_quality (
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, reason)
);
