-- Core schema: users and keys, projects and their assistant records, the audit trail.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    subject     TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'auditor', 'admin')),
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    description   TEXT,
    device_type   TEXT,
    intended_use  TEXT,
    product_code  TEXT,
    status        TEXT NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'active', 'in_progress', 'completed')),
    priority      TEXT CHECK (priority IN ('high', 'medium', 'low')),
    tags          TEXT NOT NULL DEFAULT '[]',
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE INDEX projects_owner_updated ON projects (user_id, updated_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE device_classifications (
    id                  INTEGER PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects (id),
    device_class        TEXT NOT NULL,
    product_code        TEXT NOT NULL,
    regulatory_pathway  TEXT NOT NULL,
    cfr_sections        TEXT NOT NULL DEFAULT '[]',
    confidence_score    REAL NOT NULL,
    reasoning           TEXT NOT NULL,
    sources             TEXT NOT NULL DEFAULT '[]',
    created_at          TEXT NOT NULL
);
CREATE INDEX device_classifications_project ON device_classifications (project_id, id DESC);

CREATE TABLE predicate_devices (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects (id),
    k_number          TEXT NOT NULL,
    device_name       TEXT NOT NULL,
    intended_use      TEXT,
    product_code      TEXT,
    clearance_date    TEXT,
    confidence_score  REAL NOT NULL,
    comparison_data   TEXT NOT NULL DEFAULT '{}',
    is_selected       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (project_id, k_number)
);

CREATE TABLE agent_interactions (
    id                 INTEGER PRIMARY KEY,
    project_id         INTEGER REFERENCES projects (id),
    user_id            INTEGER NOT NULL REFERENCES users (id),
    session_id         TEXT NOT NULL,
    task_type          TEXT NOT NULL,
    input              TEXT NOT NULL,
    output             TEXT NOT NULL,
    confidence         REAL,
    sources            TEXT NOT NULL DEFAULT '[]',
    reasoning          TEXT NOT NULL DEFAULT '',
    execution_time_ms  REAL NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX agent_interactions_project ON agent_interactions (project_id, id DESC);

CREATE TABLE project_documents (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    title       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX project_documents_project ON project_documents (project_id);

-- The audit trail: append-only, hash-chained (see src/audit.rs for the canonical encoding).
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY CHECK (seq >= 1),
    occurred_at  TEXT NOT NULL,
    actor_id     INTEGER,
    actor_email  TEXT,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT,
    project_id   INTEGER,
    reason       TEXT,
    before_json  TEXT,
    after_json   TEXT,
    request_id   TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_events_project ON audit_events (project_id, seq);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
