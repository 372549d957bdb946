-- Forewarn schema, version 7: subscriptions keyed per party (issue 20): a party may use a subscription id another
-- party holds, and nothing tells it that the other holds it.
CREATE TABLE subscriptions_by_party (
    party_id TEXT NOT NULL REFERENCES parties(id),
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (party_id, id)
);
INSERT INTO subscriptions_by_party(party_id, id, doc) SELECT party_id, id, doc FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_by_party RENAME TO subscriptions;
