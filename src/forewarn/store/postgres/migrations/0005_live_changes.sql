-- Forewarn schema on PostgreSQL, version 5: the change log of the live picture (issue 16, several processes).
-- Every insert or update of an operation or an agreement appends one row, in the same transaction, by trigger
-- (so no write path can forget it). Every write transaction holds the writer advisory lock, so seq order is
-- commit order: a process that has applied every row up to seq N has the live picture as of that commit.
CREATE TABLE live_changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('operation', 'agreement')),
    key TEXT NOT NULL
);
CREATE FUNCTION forewarn_log_operation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO live_changes(kind, key) VALUES ('operation', NEW.id);
    RETURN NULL;
END $$;
CREATE FUNCTION forewarn_log_agreement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO live_changes(kind, key) VALUES ('agreement', NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER operations_logged AFTER INSERT OR UPDATE ON operations
    FOR EACH ROW EXECUTE FUNCTION forewarn_log_operation();
CREATE TRIGGER agreements_logged AFTER INSERT OR UPDATE ON agreements
    FOR EACH ROW EXECUTE FUNCTION forewarn_log_agreement();
