-- Users, and the transactional outbox of the events that announce them.

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    username      text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Uniqueness is case-insensitive and decided here, not by a check-then-insert: two concurrent
-- registrations of one address cannot both commit. The index names are mapped to domain errors.
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));
CREATE UNIQUE INDEX users_username_unique ON users (lower(username));

CREATE TABLE outbox (
    id            uuid        PRIMARY KEY,          -- the event id, sent as AMQP message_id
    seq           bigserial   NOT NULL UNIQUE,      -- publication order
    event_type    text        NOT NULL,
    payload       json        NOT NULL,             -- json, not jsonb: keeps the exact bytes
    occurred_at   timestamptz NOT NULL,
    published_at  timestamptz,
    claimed_until timestamptz,                      -- a relay's lease on the row
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text
);

CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
