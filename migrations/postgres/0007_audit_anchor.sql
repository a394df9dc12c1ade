-- Signed checkpoints of the audit chain's head (src/audit/checkpoint.rs), append-only like the
-- trail: a record that checkpoints were written, so that a missing checkpoint file is noticed.
CREATE TABLE audit_checkpoints (
    id          BIGSERIAL PRIMARY KEY,
    head_seq    BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    at          TEXT NOT NULL,
    signature   TEXT NOT NULL,
    written_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Least privilege. The owner role runs the migrations and owns every table (so only it, or a
-- superuser, can drop or disable the append-only triggers). The service logs in as a member of
-- the NOLOGIN group role `regassist_service`, which may read and write the business tables but
-- only SELECT and INSERT on the audit trail and its checkpoints. `scripts/postgres-init-roles.sh`
-- creates the roles in production; where the migrating role may create roles (tests, a
-- superuser) the group is created here. One function holds the grants so that the restore
-- script can apply them again to a restored copy (backups carry no privileges).
CREATE FUNCTION regassist_grant_service() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regassist_service') THEN
        BEGIN
            CREATE ROLE regassist_service NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN
            -- Another migration created it at the same moment, or this role may not create roles.
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regassist_service') THEN
        RAISE NOTICE 'role regassist_service does not exist: no privileges granted';
        RETURN;
    END IF;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO regassist_service;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO regassist_service;
    REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM regassist_service;
    REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON audit_events, audit_checkpoints
        FROM regassist_service;
    -- Tables later migrations create get the same default; an audit table must revoke as above.
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO regassist_service;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT USAGE, SELECT ON SEQUENCES TO regassist_service;
END;
$$;
SELECT regassist_grant_service();
