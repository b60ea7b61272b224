-- Sessions (refresh-token families), their refresh tokens, and revoked access tokens.

CREATE TABLE sessions (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Only a SHA-256 of each token is stored: a copy of this table opens no session.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Kept until the token would have expired anyway, then pruned.
CREATE TABLE revoked_access_tokens (
    jti        uuid        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);
