-- Every instance keeps the sessions it knows to be live, and their users, in memory, so that
-- checking an access token needs no query. These triggers tell all of them at once when one
-- of those facts changes, whoever changes it (the service, another instance, an operator).
CREATE FUNCTION auth_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_cache', TG_ARGV[0] || ':' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_cache_session_revoked
    AFTER UPDATE ON sessions
    FOR EACH ROW WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at OR NEW.id <> OLD.id)
    EXECUTE FUNCTION auth_cache_notify('session');

CREATE TRIGGER auth_cache_session_deleted
    AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION auth_cache_notify('session');

CREATE TRIGGER auth_cache_user_changed
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION auth_cache_notify('user');

-- TRUNCATE fires no row triggers: tell everyone to start over.
CREATE FUNCTION auth_cache_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_cache', 'all');
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_cache_sessions_truncated
    AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auth_cache_notify_all();

CREATE TRIGGER auth_cache_users_truncated
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_cache_notify_all();

-- Also when the session's replication role is replica (logical replication, some migration
-- tools). The service checks that they stay so, and its cache does not serve otherwise.
ALTER TABLE sessions ENABLE ALWAYS TRIGGER auth_cache_session_revoked;
ALTER TABLE sessions ENABLE ALWAYS TRIGGER auth_cache_session_deleted;
ALTER TABLE sessions ENABLE ALWAYS TRIGGER auth_cache_sessions_truncated;
ALTER TABLE users ENABLE ALWAYS TRIGGER auth_cache_user_changed;
ALTER TABLE users ENABLE ALWAYS TRIGGER auth_cache_users_truncated;
