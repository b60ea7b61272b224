-- "Published in the last hour" and the pruning of old events look rows up by publication
-- time; without an index each scanned every retained event (a week of them by default).
CREATE INDEX outbox_published_at ON outbox (published_at);
