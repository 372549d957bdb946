-- Forewarn schema on PostgreSQL, version 8: live tracks shared by several processes (issue 16). Numbered 8, not 6,
-- to leave 6 and 7 to migrations written in parallel; the runner applies every version not yet recorded, in order.
-- One sequence numbers every change of the tracker's state: a track's latest state (tracks), an alert opened or
-- closed (track_alerts), an open predicted encounter predicted again (track_encounters: its hysteresis, kept apart
-- from the alert's document so that a pass rewrites and a reader reads three numbers, not the document), and the
-- tracker's values (feed periods, time of the last prediction pass). Triggers stamp seq on every insert and update, so no
-- write path can forget it. Every write transaction holds the writer advisory lock, so seq order is commit order:
-- a process that has applied every row after its position, under the lock, has the one shared tracker state.
CREATE SEQUENCE track_state_seq;
CREATE FUNCTION forewarn_stamp_track_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.seq := nextval('track_state_seq');
    RETURN NEW;
END $$;
ALTER TABLE tracks ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE track_alerts ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE track_encounters (
    alert_id TEXT PRIMARY KEY REFERENCES track_alerts(id),
    last_seen_s DOUBLE PRECISION NOT NULL,
    updates INTEGER NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE tracker_values (
    name TEXT PRIMARY KEY,
    value DOUBLE PRECISION NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0
);
UPDATE tracks SET seq = nextval('track_state_seq');
UPDATE track_alerts SET seq = nextval('track_state_seq');
CREATE INDEX tracks_seq ON tracks(seq);
CREATE INDEX track_alerts_seq ON track_alerts(seq);
CREATE INDEX tracker_values_seq ON tracker_values(seq);
CREATE INDEX track_encounters_seq ON track_encounters(seq);
CREATE TRIGGER tracks_stamped BEFORE INSERT OR UPDATE ON tracks
    FOR EACH ROW EXECUTE FUNCTION forewarn_stamp_track_state();
CREATE TRIGGER track_alerts_stamped BEFORE INSERT OR UPDATE ON track_alerts
    FOR EACH ROW EXECUTE FUNCTION forewarn_stamp_track_state();
CREATE TRIGGER track_encounters_stamped BEFORE INSERT OR UPDATE ON track_encounters
    FOR EACH ROW EXECUTE FUNCTION forewarn_stamp_track_state();
CREATE TRIGGER tracker_values_stamped BEFORE INSERT OR UPDATE ON tracker_values
    FOR EACH ROW EXECUTE FUNCTION forewarn_stamp_track_state();
