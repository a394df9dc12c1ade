-- Each owner's project list carries a version, replaced by a random one in the same transaction
-- as every change to one of the owner's projects; a rendered page of the list is served again
-- only while the version is the one it was built at (src/http/pages.rs). See PostgreSQL's 0009:
-- SQLite has one writer, so one slot does.
CREATE TABLE project_list_versions (
    user_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, slot)
);

CREATE TRIGGER projects_insert_new_list_version AFTER INSERT ON projects
BEGIN
    INSERT OR REPLACE INTO project_list_versions (user_id, slot, version)
    VALUES (NEW.user_id, 0, random());
END;

CREATE TRIGGER projects_update_new_list_version AFTER UPDATE ON projects
BEGIN
    INSERT OR REPLACE INTO project_list_versions (user_id, slot, version)
    VALUES (OLD.user_id, 0, random());
    INSERT OR REPLACE INTO project_list_versions (user_id, slot, version)
    VALUES (NEW.user_id, 0, random());
END;

CREATE TRIGGER projects_delete_new_list_version AFTER DELETE ON projects
BEGIN
    INSERT OR REPLACE INTO project_list_versions (user_id, slot, version)
    VALUES (OLD.user_id, 0, random());
END;
