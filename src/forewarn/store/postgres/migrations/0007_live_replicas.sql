-- Forewarn schema on PostgreSQL, version 7: pruning the change log (issue 16). Each service process reports the
-- position its replica of the live picture has applied (live_replicas, with a heartbeat); rows of live_changes
-- at or below every fresh replica's position are deleted periodically, and live_changes_pruned (one row, written
-- by the first prune) records the highest position deleted, so a replica that fell behind it (a process paused
-- past the retention) reloads in full.
CREATE TABLE live_replicas (
    id TEXT PRIMARY KEY,
    seen BIGINT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE live_changes_pruned (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    through BIGINT NOT NULL
);
