-- Forewarn schema on PostgreSQL, version 9: the key (party, track, time) of every stored position, unique, so that
-- a position fed twice (a file replayed again, a feed resent after a restart) is stored once (INSERT ... ON
-- CONFLICT DO NOTHING). Positions stored before this migration are not in it: duplicates are detected from this
-- version on. (Versions 6 to 8 are other changes'; versions are applied in order and may have gaps.)
CREATE TABLE track_position_keys (
    party_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    t_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (party_id, track_id, t_s)
);
