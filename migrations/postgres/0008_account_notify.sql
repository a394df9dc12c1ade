-- Every replica caches whom a credential signs in; these triggers announce each change that can
-- make such an entry wrong (a user's role, state or profile; a key's revocation or expiry), and
-- each replica empties its cache on the announcement. A key's usage stamp (`last_used_at`) is
-- not such a change, so it stays silent. NOTIFY is delivered at commit, once per statement.
CREATE FUNCTION notify_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('regassist_accounts', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_announce_change
    AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_account_change();

CREATE TRIGGER api_keys_announce_change
    AFTER UPDATE OF user_id, key_hash, revoked_at, expires_at OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_account_change();
