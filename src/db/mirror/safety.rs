//! The mirror's safety data: recalls (CDRH), enforcement reports (the recall class), the
//! K-numbers recalls name, and adverse-event counts, written inside an import's transaction and
//! read for candidates in a few set queries.
//!
//! Event counts are a file's contribution: the import adds its partial sums into a per-connection
//! staging table, then replaces the file's stored counts with it in one statement, so a re-import
//! changes nothing and a refreshed file corrects rather than doubles.

use chrono::{DateTime, NaiveDate, Utc};

use super::upsert::{sqlite_sql, Upserted};
use crate::db::{now, Db, Tx};
use crate::{on_read, on_tx};

/// One `device/recall` record, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recall {
    /// `product_res_number`, e.g. `Z-0053-2020`.
    pub recall_number: String,
    pub event_number: Option<String>,
    pub product_code: Option<String>,
    pub recalling_firm: Option<String>,
    /// The firm's name normalised (`domain::safety::firm_key`).
    pub firm_key: Option<String>,
    pub recall_status: Option<String>,
    pub event_date_initiated: Option<NaiveDate>,
    pub event_date_posted: Option<NaiveDate>,
    pub event_date_terminated: Option<NaiveDate>,
    pub reason_for_recall: Option<String>,
    pub root_cause_description: Option<String>,
    pub product_description: Option<String>,
    /// Valid K-numbers, sorted and distinct.
    pub k_numbers: Vec<String>,
}

/// One `device/enforcement` record, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enforcement {
    pub recall_number: String,
    /// `Class I`, `Class II` or `Class III`.
    pub classification: Option<String>,
    pub status: Option<String>,
    pub event_id: Option<String>,
    pub recalling_firm: Option<String>,
    pub recall_initiation_date: Option<NaiveDate>,
    pub report_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    pub reason_for_recall: Option<String>,
}

/// A value bound to a per-row statement.
enum Val<'a> {
    Text(Option<&'a str>),
    Date(Option<NaiveDate>),
}

const RECALL_COLUMNS: &[&str] = &[
    "recall_number",
    "event_number",
    "product_code",
    "recalling_firm",
    "firm_key",
    "recall_status",
    "event_date_initiated",
    "event_date_posted",
    "event_date_terminated",
    "reason_for_recall",
    "root_cause_description",
    "product_description",
    "k_numbers",
];

const ENFORCEMENT_COLUMNS: &[&str] = &[
    "recall_number",
    "classification",
    "status",
    "event_id",
    "recalling_firm",
    "recall_initiation_date",
    "report_date",
    "termination_date",
    "reason_for_recall",
];

/// Upserts one row; true when it was written (new or changed), and whether it was new.
async fn upsert_row(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    values: &[Val<'_>],
    source: &str,
    at: DateTime<Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    let key = match values.first() {
        Some(Val::Text(Some(k))) => *k,
        _ => return Ok(None),
    };
    let exists_sql = format!("SELECT COUNT(*) FROM {table} WHERE {} = $1", columns[0]);
    let sql = sqlite_sql(table, columns, &[]);
    on_tx!(tx, conn => {
        let existed: i64 = sqlx::query_scalar(&exists_sql).bind(key).fetch_one(&mut *conn).await?;
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for v in values {
            q = match v {
                Val::Text(t) => q.bind(*t),
                Val::Date(d) => q.bind(*d),
            };
        }
        let written = q.bind(source).bind(at).fetch_optional(&mut *conn).await?;
        Ok(written.map(|_| existed == 0))
    })
}

fn count(out: &mut Upserted, written: Option<bool>) {
    match written {
        Some(true) => out.inserted += 1,
        Some(false) => out.updated += 1,
        None => {}
    }
}

/// Upserts recalls; a recall written anew or changed gets its K-number links replaced.
pub async fn upsert_recalls(
    tx: &mut Tx,
    rows: &[Recall],
    source: &str,
) -> Result<Upserted, sqlx::Error> {
    let at = now();
    let mut out = Upserted::default();
    for r in rows {
        let joined = r.k_numbers.join(",");
        let values = [
            Val::Text(Some(&r.recall_number)),
            Val::Text(r.event_number.as_deref()),
            Val::Text(r.product_code.as_deref()),
            Val::Text(r.recalling_firm.as_deref()),
            Val::Text(r.firm_key.as_deref()),
            Val::Text(r.recall_status.as_deref()),
            Val::Date(r.event_date_initiated),
            Val::Date(r.event_date_posted),
            Val::Date(r.event_date_terminated),
            Val::Text(r.reason_for_recall.as_deref()),
            Val::Text(r.root_cause_description.as_deref()),
            Val::Text(r.product_description.as_deref()),
            Val::Text((!joined.is_empty()).then_some(joined.as_str())),
        ];
        let written = upsert_row(tx, "fda_recalls", RECALL_COLUMNS, &values, source, at).await?;
        if written.is_some() {
            on_tx!(tx, conn => {
                sqlx::query("DELETE FROM fda_recall_k_numbers WHERE recall_number = $1")
                    .bind(&r.recall_number).execute(&mut *conn).await?;
                for k in &r.k_numbers {
                    sqlx::query("INSERT INTO fda_recall_k_numbers (recall_number, k_number) VALUES ($1, $2) \
                                 ON CONFLICT DO NOTHING")
                        .bind(&r.recall_number).bind(k).execute(&mut *conn).await?;
                }
                Ok::<(), sqlx::Error>(())
            })?;
        }
        count(&mut out, written);
    }
    Ok(out)
}

/// Upserts enforcement reports.
pub async fn upsert_enforcement(
    tx: &mut Tx,
    rows: &[Enforcement],
    source: &str,
) -> Result<Upserted, sqlx::Error> {
    let at = now();
    let mut out = Upserted::default();
    for e in rows {
        let values = [
            Val::Text(Some(&e.recall_number)),
            Val::Text(e.classification.as_deref()),
            Val::Text(e.status.as_deref()),
            Val::Text(e.event_id.as_deref()),
            Val::Text(e.recalling_firm.as_deref()),
            Val::Date(e.recall_initiation_date),
            Val::Date(e.report_date),
            Val::Date(e.termination_date),
            Val::Text(e.reason_for_recall.as_deref()),
        ];
        let written = upsert_row(
            tx,
            "fda_enforcement",
            ENFORCEMENT_COLUMNS,
            &values,
            source,
            at,
        )
        .await?;
        count(&mut out, written);
    }
    Ok(out)
}

/// One partial count: (scope `product_code` | `k_number`, key, year, event type, reports).
pub type EventCount = (&'static str, String, i32, &'static str, i64);

/// Empties (creating if needed) this connection's staging table for event counts.
pub async fn event_stage_begin(tx: &mut Tx) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS fda_event_stage (scope TEXT NOT NULL, \
            device_key TEXT NOT NULL, report_year INTEGER NOT NULL, event_type TEXT NOT NULL, \
            n BIGINT NOT NULL, PRIMARY KEY (scope, device_key, report_year, event_type))")
            .execute(&mut *conn).await?;
        sqlx::query("DELETE FROM fda_event_stage").execute(&mut *conn).await?;
        Ok(())
    })
}

/// Adds partial counts to the staging table.
pub async fn event_stage_add(tx: &mut Tx, rows: &[EventCount]) -> Result<(), sqlx::Error> {
    const SQL: &str =
        "INSERT INTO fda_event_stage (scope, device_key, report_year, event_type, n) \
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, device_key, report_year, event_type) \
        DO UPDATE SET n = fda_event_stage.n + excluded.n";
    on_tx!(tx, conn => {
        for (scope, key, year, event_type, n) in rows {
            sqlx::query(SQL).bind(*scope).bind(key).bind(*year).bind(*event_type).bind(*n)
                .execute(&mut *conn).await?;
        }
        Ok(())
    })
}

/// Replaces `source`'s stored counts with the staged ones. Counts keys added (inserted) and
/// keys whose count changed or that the file no longer has (updated).
pub async fn event_stage_commit(tx: &mut Tx, source: &str) -> Result<Upserted, sqlx::Error> {
    const SAME_KEY: &str = "c.scope = s.scope AND c.device_key = s.device_key \
        AND c.report_year = s.report_year AND c.event_type = s.event_type";
    let new_keys = format!(
        "SELECT COUNT(*) FROM fda_event_stage s WHERE NOT EXISTS \
         (SELECT 1 FROM fda_event_counts c WHERE c.source = $1 AND {SAME_KEY})"
    );
    let changed = format!(
        "SELECT COUNT(*) FROM fda_event_stage s JOIN fda_event_counts c \
         ON c.source = $1 AND {SAME_KEY} WHERE c.n <> s.n"
    );
    // The DELETE names its table rather than an alias, which SQLite's DELETE does not take.
    const GONE: &str = "DELETE FROM fda_event_counts WHERE fda_event_counts.source = $1 AND NOT EXISTS \
        (SELECT 1 FROM fda_event_stage s WHERE s.scope = fda_event_counts.scope \
        AND s.device_key = fda_event_counts.device_key AND s.report_year = fda_event_counts.report_year \
        AND s.event_type = fda_event_counts.event_type)";
    // `WHERE true` lets SQLite parse an upsert whose rows come from a SELECT.
    const COPY: &str =
        "INSERT INTO fda_event_counts (source, scope, device_key, report_year, event_type, n) \
        SELECT $1, scope, device_key, report_year, event_type, n FROM fda_event_stage WHERE true \
        ON CONFLICT (source, scope, device_key, report_year, event_type) \
        DO UPDATE SET n = excluded.n WHERE fda_event_counts.n <> excluded.n";
    on_tx!(tx, conn => {
        let inserted: i64 = sqlx::query_scalar(&new_keys).bind(source).fetch_one(&mut *conn).await?;
        let updated: i64 = sqlx::query_scalar(&changed).bind(source).fetch_one(&mut *conn).await?;
        let removed = sqlx::query(GONE).bind(source).execute(&mut *conn).await?.rows_affected();
        sqlx::query(COPY).bind(source).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM fda_event_stage").execute(&mut *conn).await?;
        Ok(Upserted { inserted: inserted as u64, updated: updated as u64 + removed })
    })
}

/// What the mirror holds of each kind of safety data: `(kind, imports, newest data date)`.
pub async fn safety_imports(db: &Db) -> Result<Vec<(String, i64, Option<NaiveDate>)>, sqlx::Error> {
    const SQL: &str = "SELECT kind, COUNT(*), MAX(data_date) FROM fda_imports \
        WHERE kind IN ('recall', 'enforcement', 'event') GROUP BY kind";
    on_read!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await)
}

/// A recall as read for a candidate, with its class from the enforcement report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecallHit {
    /// The K-number the recall was found through (`None` when found by firm and product code).
    pub via: Option<String>,
    pub recall_number: String,
    pub event_number: Option<String>,
    pub product_code: Option<String>,
    pub recalling_firm: Option<String>,
    pub firm_key: Option<String>,
    pub recall_status: Option<String>,
    pub event_date_initiated: Option<NaiveDate>,
    pub event_date_terminated: Option<NaiveDate>,
    pub reason_for_recall: Option<String>,
    pub k_numbers: Option<String>,
    pub classification: Option<String>,
}

const HIT_COLUMNS: &str = "r.recall_number, r.event_number, r.product_code, r.recalling_firm, \
    r.firm_key, r.recall_status, r.event_date_initiated, r.event_date_terminated, \
    r.reason_for_recall, r.k_numbers, e.classification";

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Recalls naming any of `k_numbers` (at most 1000 rows).
pub async fn recalls_naming(db: &Db, k_numbers: &[&str]) -> Result<Vec<RecallHit>, sqlx::Error> {
    if k_numbers.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT l.k_number AS via, {HIT_COLUMNS} FROM fda_recall_k_numbers l \
         JOIN fda_recalls r ON r.recall_number = l.recall_number \
         LEFT JOIN fda_enforcement e ON e.recall_number = r.recall_number \
         WHERE l.k_number IN ({}) ORDER BY r.event_date_initiated DESC, r.recall_number LIMIT 1000",
        placeholders(1, k_numbers.len())
    );
    on_read!(db, pool => {
        let mut q = sqlx::query_as::<_, RecallHit>(&sql);
        for k in k_numbers {
            q = q.bind(*k);
        }
        q.fetch_all(pool).await
    })
}

/// Recalls of the given product codes by the given firms (normalised names; at most 1000 rows).
pub async fn recalls_of_firms(
    db: &Db,
    product_codes: &[&str],
    firm_keys: &[&str],
) -> Result<Vec<RecallHit>, sqlx::Error> {
    if product_codes.is_empty() || firm_keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT NULL AS via, {HIT_COLUMNS} FROM fda_recalls r \
         LEFT JOIN fda_enforcement e ON e.recall_number = r.recall_number \
         WHERE r.product_code IN ({}) AND r.firm_key IN ({}) \
         ORDER BY r.event_date_initiated DESC, r.recall_number LIMIT 1000",
        placeholders(1, product_codes.len()),
        placeholders(1 + product_codes.len(), firm_keys.len())
    );
    on_read!(db, pool => {
        let mut q = sqlx::query_as::<_, RecallHit>(&sql);
        for v in product_codes.iter().chain(firm_keys) {
            q = q.bind(*v);
        }
        q.fetch_all(pool).await
    })
}

/// Summed event counts of the given 510(k)s and product codes:
/// `(scope, key, year, event type, reports)`.
pub async fn event_counts(
    db: &Db,
    k_numbers: &[&str],
    product_codes: &[&str],
) -> Result<Vec<(String, String, i32, String, i64)>, sqlx::Error> {
    let mut clauses = Vec::new();
    if !k_numbers.is_empty() {
        clauses.push(format!(
            "(scope = 'k_number' AND device_key IN ({}))",
            placeholders(1, k_numbers.len())
        ));
    }
    if !product_codes.is_empty() {
        clauses.push(format!(
            "(scope = 'product_code' AND device_key IN ({}))",
            placeholders(1 + k_numbers.len(), product_codes.len())
        ));
    }
    if clauses.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT scope, device_key, report_year, event_type, CAST(SUM(n) AS BIGINT) FROM fda_event_counts \
         WHERE {} GROUP BY scope, device_key, report_year, event_type",
        clauses.join(" OR ")
    );
    on_read!(db, pool => {
        let mut q = sqlx::query_as::<_, (String, String, i32, String, i64)>(&sql);
        for v in k_numbers.iter().chain(product_codes) {
            q = q.bind(*v);
        }
        q.fetch_all(pool).await
    })
}

/// Row counts of the safety tables (for tests and the import summary's checks).
pub async fn count_safety(db: &Db) -> Result<(i64, i64, i64, i64), sqlx::Error> {
    const SQL: &str =
        "SELECT (SELECT COUNT(*) FROM fda_recalls), (SELECT COUNT(*) FROM fda_recall_k_numbers), \
        (SELECT COUNT(*) FROM fda_enforcement), (SELECT COUNT(*) FROM fda_event_counts)";
    on_read!(db, pool => sqlx::query_as(SQL).fetch_one(pool).await)
}
