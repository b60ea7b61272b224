-- The audit listener's log, and the inbox that makes every listener's effect happen once per
-- event: both are written in one transaction, so a redelivered event finds its inbox row.

CREATE TABLE inbox (
    listener    text        NOT NULL,
    event_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (listener, event_id)
);

CREATE TABLE audit_log (
    event_id    uuid        PRIMARY KEY,
    event_type  text        NOT NULL,
    user_id     uuid,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
