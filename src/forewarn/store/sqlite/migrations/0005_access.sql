-- Forewarn schema, version 5: a party can be disabled (issue 20). While disabled_at is set (UTC, ISO 8601) no
-- token of the party is accepted, whoever issued it, and its credentials get no new token. A credential's
-- revocation is its document's revoked_at.
ALTER TABLE parties ADD COLUMN disabled_at TEXT;
