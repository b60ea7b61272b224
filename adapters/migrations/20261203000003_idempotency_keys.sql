-- Registrations made with an Idempotency-Key, kept for 24 hours so that a retry replays them.

CREATE TABLE idempotency_keys (
    key                 text        PRIMARY KEY,
    -- A keyed hash of the request's fields (the password among them): tells a retry from a
    -- different request without keeping the fields.
    request_fingerprint bytea       NOT NULL,
    -- Set in the registration's own transaction; NULL while the first attempt runs.
    user_id             uuid        REFERENCES users (id) ON DELETE CASCADE,
    session_id          uuid,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
