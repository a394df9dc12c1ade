-- Core schema: users and keys, projects and their assistant records, the audit trail.
CREATE TABLE users (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject     TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'auditor', 'admin')),
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    description   TEXT,
    device_type   TEXT,
    intended_use  TEXT,
    product_code  TEXT,
    status        TEXT NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'active', 'in_progress', 'completed')),
    priority      TEXT CHECK (priority IN ('high', 'medium', 'low')),
    tags          JSONB NOT NULL DEFAULT '[]',
    version       BIGINT NOT NULL DEFAULT 1,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX projects_owner_updated ON projects (user_id, updated_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE device_classifications (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id          BIGINT NOT NULL REFERENCES projects (id),
    device_class        TEXT NOT NULL,
    product_code        TEXT NOT NULL,
    regulatory_pathway  TEXT NOT NULL,
    cfr_sections        JSONB NOT NULL DEFAULT '[]',
    confidence_score    DOUBLE PRECISION NOT NULL,
    reasoning           TEXT NOT NULL,
    sources             JSONB NOT NULL DEFAULT '[]',
    created_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX device_classifications_project ON device_classifications (project_id, id DESC);

CREATE TABLE predicate_devices (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id),
    k_number          TEXT NOT NULL,
    device_name       TEXT NOT NULL,
    intended_use      TEXT,
    product_code      TEXT,
    clearance_date    DATE,
    confidence_score  DOUBLE PRECISION NOT NULL,
    comparison_data   JSONB NOT NULL DEFAULT '{}',
    is_selected       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, k_number)
);

CREATE TABLE agent_interactions (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id         BIGINT REFERENCES projects (id),
    user_id            BIGINT NOT NULL REFERENCES users (id),
    session_id         TEXT NOT NULL,
    task_type          TEXT NOT NULL,
    input              JSONB NOT NULL,
    output             JSONB NOT NULL,
    confidence         DOUBLE PRECISION,
    sources            JSONB NOT NULL DEFAULT '[]',
    reasoning          TEXT NOT NULL DEFAULT '',
    execution_time_ms  DOUBLE PRECISION NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_interactions_project ON agent_interactions (project_id, id DESC);

CREATE TABLE project_documents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    title       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX project_documents_project ON project_documents (project_id);

-- The audit trail: append-only, hash-chained. before/after hold canonical JSON text exactly as
-- hashed, so an exported row can be re-verified byte for byte.
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY CHECK (seq >= 1),
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor_id     BIGINT,
    actor_email  TEXT,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT,
    project_id   BIGINT,
    reason       TEXT,
    before_json  TEXT,
    after_json   TEXT,
    request_id   TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_events_project ON audit_events (project_id, seq);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
