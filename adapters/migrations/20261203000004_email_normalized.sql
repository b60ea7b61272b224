-- Email uniqueness on a form computed by the service (NFKC, then Unicode lower case), not by
-- lower(), whose result depends on the database's locale: in a "C" database lower('É') is 'É'.

ALTER TABLE users ADD COLUMN email_normalized text;
UPDATE users SET email_normalized = lower(email);
ALTER TABLE users ALTER COLUMN email_normalized SET NOT NULL;

DROP INDEX users_email_unique;
CREATE UNIQUE INDEX users_email_unique ON users (email_normalized);
