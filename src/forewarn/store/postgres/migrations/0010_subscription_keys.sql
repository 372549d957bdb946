-- Forewarn schema, version 10: subscriptions keyed per party (issue 20): a party may use a subscription id another
-- party holds, and nothing tells it that the other holds it.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
ALTER TABLE subscriptions ADD PRIMARY KEY (party_id, id);
