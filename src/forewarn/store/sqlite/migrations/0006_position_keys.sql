-- Forewarn schema, version 6: the key (party, track, time) of every stored position, unique, so that a position
-- fed twice (a file replayed again, a feed resent after a restart) is stored once. Positions stored before this
-- migration are not in it (their chunks are not decoded here): duplicates are detected from this version on.
-- (Version 5 is another change's; versions are applied in order and may have gaps.)
CREATE TABLE track_position_keys (
    party_id TEXT NOT NULL,
    track_id TEXT NOT NULL,
    t_s REAL NOT NULL,
    PRIMARY KEY (party_id, track_id, t_s)
) WITHOUT ROWID;
