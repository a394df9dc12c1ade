-- Signed checkpoints of the audit chain's head (src/audit/checkpoint.rs), append-only like the
-- trail: a record that checkpoints were written, so that a missing checkpoint file is noticed.
-- (PostgreSQL's migration also sets the service role's privileges; SQLite has no roles.)
CREATE TABLE audit_checkpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    head_seq    INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    at          TEXT NOT NULL,
    signature   TEXT NOT NULL,
    written_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;
