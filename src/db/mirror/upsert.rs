//! Batch upserts of mirror rows. PostgreSQL gets one `INSERT … SELECT FROM UNNEST(arrays)` per
//! batch (one round trip, one plan); SQLite runs one cached single-row statement per record,
//! which in-process is faster than parsing a statement with thousands of placeholders.
//! Either way a row is only rewritten when a value really changed.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::{Fda510k, ProductCode, COLUMNS_510K, COLUMNS_PRODUCT_CODE};
use crate::db::{now, Tx, TxConn};

/// Rows inserted and updated by one upsert batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u64,
    pub updated: u64,
}

/// `ON CONFLICT (key) DO UPDATE SET … WHERE <a column changed>`. `required` columns are NOT NULL
/// and always replaced; the others keep their stored value when the new row lacks them.
pub(super) fn on_conflict(table: &str, columns: &[&str], required: &[&str]) -> String {
    let key = columns[0];
    let mut sets = Vec::new();
    let mut changed = Vec::new();
    for col in &columns[1..] {
        if required.contains(col) {
            sets.push(format!("{col} = excluded.{col}"));
            changed.push(format!("{table}.{col} IS DISTINCT FROM excluded.{col}"));
        } else {
            sets.push(format!("{col} = COALESCE(excluded.{col}, {table}.{col})"));
            changed.push(format!(
                "(excluded.{col} IS NOT NULL AND {table}.{col} IS DISTINCT FROM excluded.{col})"
            ));
        }
    }
    format!(
        " ON CONFLICT ({key}) DO UPDATE SET {}, source = excluded.source, updated_at = excluded.updated_at \
         WHERE {}",
        sets.join(", "),
        changed.join(" OR ")
    )
}

/// The PostgreSQL statement: arrays in, `(key, inserted)` out for every row written.
fn pg_sql(table: &str, columns: &[&str], required: &[&str], date_columns: &[&str]) -> String {
    let n = columns.len();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = if date_columns.contains(c) {
                "date"
            } else {
                "text"
            };
            format!("${}::{ty}[]", i + 1)
        })
        .collect();
    format!(
        "INSERT INTO {table} ({cols}, source, updated_at) SELECT u.*, ${s}, ${t} FROM UNNEST({arrays}) AS u({cols}){conflict} \
         RETURNING {key}, (xmax = 0) AS inserted",
        cols = columns.join(", "),
        s = n + 1,
        t = n + 2,
        arrays = arrays.join(", "),
        conflict = on_conflict(table, columns, required),
        key = columns[0],
    )
}

/// The SQLite statement for one row; returns the key when the row was written.
pub(super) fn sqlite_sql(table: &str, columns: &[&str], required: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len() + 2).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}, source, updated_at) VALUES ({}){} RETURNING {}",
        columns.join(", "),
        placeholders.join(", "),
        on_conflict(table, columns, required),
        columns[0]
    )
}

/// The last occurrence of each key wins (PostgreSQL refuses to touch a row twice in one statement).
fn dedup_by_key<T>(rows: &[T], key: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert(key(r), i);
    }
    rows.iter()
        .enumerate()
        .filter(|(i, r)| last.get(key(r)) == Some(i))
        .map(|(_, r)| r)
        .collect()
}

fn tally(results: impl IntoIterator<Item = bool>) -> Upserted {
    let mut out = Upserted::default();
    for inserted in results {
        if inserted {
            out.inserted += 1;
        } else {
            out.updated += 1;
        }
    }
    out
}

const DATES_510K: &[&str] = &["decision_date", "date_received"];

/// Upserts a batch of 510(k) records inside `tx`.
pub async fn upsert_510k(
    tx: &mut Tx,
    rows: &[Fda510k],
    source: &str,
) -> Result<Upserted, sqlx::Error> {
    let rows = dedup_by_key(rows, |r| r.k_number.as_str());
    let at = now();
    match &mut tx.conn {
        TxConn::Postgres(conn) => {
            let sql = pg_sql("fda_510k", COLUMNS_510K, &["device_name"], DATES_510K);
            let text = |f: fn(&Fda510k) -> Option<&String>| -> Vec<Option<String>> {
                rows.iter().map(|r| f(r).cloned()).collect()
            };
            let date = |f: fn(&Fda510k) -> Option<NaiveDate>| -> Vec<Option<NaiveDate>> {
                rows.iter().map(|r| f(r)).collect()
            };
            let keys: Vec<String> = rows.iter().map(|r| r.k_number.clone()).collect();
            let names: Vec<String> = rows.iter().map(|r| r.device_name.clone()).collect();
            let written: Vec<(String, bool)> = sqlx::query_as(&sql)
                .bind(keys)
                .bind(text(|r| r.applicant.as_ref()))
                .bind(names)
                .bind(text(|r| r.product_code.as_ref()))
                .bind(date(|r| r.decision_date))
                .bind(text(|r| r.decision_code.as_ref()))
                .bind(text(|r| r.decision_description.as_ref()))
                .bind(text(|r| r.clearance_type.as_ref()))
                .bind(date(|r| r.date_received))
                .bind(text(|r| r.review_advisory_committee.as_ref()))
                .bind(text(|r| r.advisory_committee.as_ref()))
                .bind(text(|r| r.statement_or_summary.as_ref()))
                .bind(text(|r| r.third_party_flag.as_ref()))
                .bind(text(|r| r.expedited_review_flag.as_ref()))
                .bind(text(|r| r.country_code.as_ref()))
                .bind(text(|r| r.state.as_ref()))
                .bind(text(|r| r.city.as_ref()))
                .bind(text(|r| r.zip_code.as_ref()))
                .bind(source)
                .bind(at)
                .fetch_all(&mut **conn)
                .await?;
            Ok(tally(written.into_iter().map(|(_, inserted)| inserted)))
        }
        TxConn::Sqlite(conn) => {
            let sql = sqlite_sql("fda_510k", COLUMNS_510K, &["device_name"]);
            let mut results = Vec::new();
            for r in rows {
                let existed: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM fda_510k WHERE k_number = $1")
                        .bind(&r.k_number)
                        .fetch_optional(&mut **conn)
                        .await?;
                let written: Option<String> = sqlx::query_scalar(&sql)
                    .bind(&r.k_number)
                    .bind(&r.applicant)
                    .bind(&r.device_name)
                    .bind(&r.product_code)
                    .bind(r.decision_date)
                    .bind(&r.decision_code)
                    .bind(&r.decision_description)
                    .bind(&r.clearance_type)
                    .bind(r.date_received)
                    .bind(&r.review_advisory_committee)
                    .bind(&r.advisory_committee)
                    .bind(&r.statement_or_summary)
                    .bind(&r.third_party_flag)
                    .bind(&r.expedited_review_flag)
                    .bind(&r.country_code)
                    .bind(&r.state)
                    .bind(&r.city)
                    .bind(&r.zip_code)
                    .bind(source)
                    .bind(at)
                    .fetch_optional(&mut **conn)
                    .await?;
                if written.is_some() {
                    results.push(existed.is_none());
                }
            }
            Ok(tally(results))
        }
    }
}

/// Upserts a batch of product codes inside `tx`.
pub async fn upsert_product_codes(
    tx: &mut Tx,
    rows: &[ProductCode],
    source: &str,
) -> Result<Upserted, sqlx::Error> {
    let rows = dedup_by_key(rows, |r| r.product_code.as_str());
    let required = &["device_name", "device_class"];
    let at = now();
    match &mut tx.conn {
        TxConn::Postgres(conn) => {
            let sql = pg_sql("fda_product_codes", COLUMNS_PRODUCT_CODE, required, &[]);
            let text = |f: fn(&ProductCode) -> Option<&String>| -> Vec<Option<String>> {
                rows.iter().map(|r| f(r).cloned()).collect()
            };
            let written: Vec<(String, bool)> = sqlx::query_as(&sql)
                .bind(text(|r| Some(&r.product_code)))
                .bind(text(|r| Some(&r.device_name)))
                .bind(text(|r| Some(&r.device_class)))
                .bind(text(|r| r.regulation_number.as_ref()))
                .bind(text(|r| r.medical_specialty.as_ref()))
                .bind(text(|r| r.review_panel.as_ref()))
                .bind(text(|r| r.definition.as_ref()))
                .bind(text(|r| r.implant_flag.as_ref()))
                .bind(text(|r| r.life_sustain_support_flag.as_ref()))
                .bind(text(|r| r.gmp_exempt_flag.as_ref()))
                .bind(text(|r| r.third_party_flag.as_ref()))
                .bind(text(|r| r.submission_type_id.as_ref()))
                .bind(text(|r| r.unclassified_reason.as_ref()))
                .bind(text(|r| r.review_code.as_ref()))
                .bind(text(|r| r.physical_state.as_ref()))
                .bind(text(|r| r.technical_method.as_ref()))
                .bind(text(|r| r.target_area.as_ref()))
                .bind(text(|r| r.summary_malfunction_reporting.as_ref()))
                .bind(source)
                .bind(at)
                .fetch_all(&mut **conn)
                .await?;
            Ok(tally(written.into_iter().map(|(_, inserted)| inserted)))
        }
        TxConn::Sqlite(conn) => {
            let sql = sqlite_sql("fda_product_codes", COLUMNS_PRODUCT_CODE, required);
            let mut results = Vec::new();
            for r in rows {
                let existed: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM fda_product_codes WHERE product_code = $1")
                        .bind(&r.product_code)
                        .fetch_optional(&mut **conn)
                        .await?;
                let written: Option<String> = sqlx::query_scalar(&sql)
                    .bind(&r.product_code)
                    .bind(&r.device_name)
                    .bind(&r.device_class)
                    .bind(&r.regulation_number)
                    .bind(&r.medical_specialty)
                    .bind(&r.review_panel)
                    .bind(&r.definition)
                    .bind(&r.implant_flag)
                    .bind(&r.life_sustain_support_flag)
                    .bind(&r.gmp_exempt_flag)
                    .bind(&r.third_party_flag)
                    .bind(&r.submission_type_id)
                    .bind(&r.unclassified_reason)
                    .bind(&r.review_code)
                    .bind(&r.physical_state)
                    .bind(&r.technical_method)
                    .bind(&r.target_area)
                    .bind(&r.summary_malfunction_reporting)
                    .bind(source)
                    .bind(at)
                    .fetch_optional(&mut **conn)
                    .await?;
                if written.is_some() {
                    results.push(existed.is_none());
                }
            }
            Ok(tally(results))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_placeholders_in_order() {
        let sql = sqlite_sql("t", &["k", "a", "b"], &["a"]);
        assert!(sql.contains("VALUES ($1, $2, $3, $4, $5)"));
        assert!(sql.contains("a = excluded.a"));
        assert!(sql.contains("b = COALESCE(excluded.b, t.b)"));
        assert!(sql.ends_with("RETURNING k"));
        let sql = pg_sql("t", &["k", "d"], &[], &["d"]);
        assert!(sql.contains("UNNEST($1::text[], $2::date[]) AS u(k, d)"));
        assert!(sql.contains("SELECT u.*, $3, $4"));
    }

    #[test]
    fn dedup_keeps_the_last_row_of_a_key() {
        let rows = [("a", 1), ("b", 2), ("a", 3)];
        let kept = dedup_by_key(&rows, |r| r.0);
        assert_eq!(kept, vec![&("b", 2), &("a", 3)]);
    }

    #[test]
    fn tally_counts() {
        assert_eq!(
            tally([true, false, true]),
            Upserted {
                inserted: 2,
                updated: 1
            }
        );
    }
}
