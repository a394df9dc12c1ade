-- Each owner's project list carries a version: a few slots of random numbers, one of which is
-- replaced by another random number in the same transaction as any change to one of the owner's
-- projects. A replica keeps rendered pages of the list and serves one again only while the slots
-- it reads first are those the page was built at (src/http/pages.rs), so a change made through
-- any replica, or by hand, shows at once on all.
--
-- Random rather than counted: a database restored from a backup and then changed cannot come
-- back to a version a replica still holds a page for. Slots, and set at commit (a deferred
-- trigger), so that one owner's concurrent writes (a script with one API key) rarely wait on
-- each other's row lock; any committed change alters some slot, whatever the commit order.
CREATE TABLE project_list_versions (
    user_id BIGINT NOT NULL,
    slot SMALLINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, slot)
);

CREATE FUNCTION new_project_list_version(owner BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_list_versions (user_id, slot, version)
    VALUES (owner, floor(random() * 16)::smallint, (random() * 9.2e18)::bigint)
    ON CONFLICT (user_id, slot) DO UPDATE SET version = EXCLUDED.version;
$$;

CREATE FUNCTION project_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM new_project_list_version(OLD.user_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id) THEN
        PERFORM new_project_list_version(NEW.user_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER projects_new_list_version
    AFTER INSERT OR UPDATE OR DELETE ON projects
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION project_changed();

-- TRUNCATE names no rows: every list changes.
CREATE FUNCTION projects_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE project_list_versions SET version = (random() * 9.2e18)::bigint;
    RETURN NULL;
END
$$;

CREATE TRIGGER projects_truncated_new_list_versions
    AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION projects_truncated();
