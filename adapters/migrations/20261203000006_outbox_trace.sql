-- The request an event came from, so that the message (and the listeners' logs) name it.
ALTER TABLE outbox ADD COLUMN request_id text, ADD COLUMN traceparent text;
