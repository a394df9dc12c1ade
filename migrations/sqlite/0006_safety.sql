-- Safety data of the mirror: openFDA's device recalls (CDRH, no class), enforcement reports (the
-- recall class), the K-numbers each recall names, and adverse-event counts aggregated from
-- `device/event` files (the reports themselves are never stored).

CREATE TABLE fda_recalls (
    recall_number          TEXT PRIMARY KEY,      -- product_res_number, e.g. Z-0053-2020
    event_number           TEXT,                  -- res_event_number
    product_code           TEXT,
    recalling_firm         TEXT,
    firm_key               TEXT,                  -- the firm's name normalised (matches 510(k) applicants)
    recall_status          TEXT,
    event_date_initiated   TEXT,
    event_date_posted      TEXT,
    event_date_terminated  TEXT,
    reason_for_recall      TEXT,
    root_cause_description TEXT,
    product_description    TEXT,
    k_numbers              TEXT,                  -- comma-joined, as read (the join uses fda_recall_k_numbers)
    source                 TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX fda_recalls_code_firm ON fda_recalls (product_code, firm_key);

CREATE TABLE fda_recall_k_numbers (
    recall_number TEXT NOT NULL,
    k_number      TEXT NOT NULL,
    PRIMARY KEY (recall_number, k_number)
);
CREATE INDEX fda_recall_k_numbers_k ON fda_recall_k_numbers (k_number);

CREATE TABLE fda_enforcement (
    recall_number          TEXT PRIMARY KEY,
    classification         TEXT,                  -- Class I, Class II, Class III
    status                 TEXT,
    event_id               TEXT,
    recalling_firm         TEXT,
    recall_initiation_date TEXT,
    report_date            TEXT,
    termination_date       TEXT,
    reason_for_recall      TEXT,
    source                 TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

-- One file's contribution per key: re-importing a file replaces its own counts.
CREATE TABLE fda_event_counts (
    source      TEXT NOT NULL,
    scope       TEXT NOT NULL,                    -- product_code or k_number
    device_key  TEXT NOT NULL,
    report_year INTEGER NOT NULL,                -- year FDA received the report (0 unknown)
    event_type  TEXT NOT NULL,                    -- death, injury, malfunction, other
    n           INTEGER NOT NULL,
    PRIMARY KEY (source, scope, device_key, report_year, event_type)
);
CREATE INDEX fda_event_counts_key ON fda_event_counts (scope, device_key);
