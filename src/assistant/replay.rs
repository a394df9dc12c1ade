//! Replayable answers: each stored suggestion and predicate search records what it was computed
//! from (the data's version, the ranking's version, and the exact question), and a replay
//! computes it again to say whether the answer is identical and whether the data still is.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Assistant;
use crate::db::agent;
use crate::db::mirror as store;
use crate::domain::ids::ProductCode;
use crate::error::ApiError;
use crate::search::{PredicateQuery, SearchResult};

/// The version of the answers' rules: predicate ranking (`domain::ranking`, `domain::hedging`)
/// and product-code scoring (`domain::classify`, its weights and calibration). Bump it with any
/// change that can change an answer on the same data.
pub const RANKING_VERSION: &str = "2026-12-06.1";

/// How many imported files a provenance lists by name (the digest covers them all).
const LISTED_FILES: usize = 20;

/// The data an answer was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataVersion {
    /// `mirror` or `openfda`.
    pub source: String,
    /// Mirror: the newest import when the answer was computed (each import bumps it).
    pub import_generation: Option<i64>,
    /// Mirror: SHA-256 over every import's file SHA-256, in import order (importing a file
    /// again counts as a change: a later import of older rows can change the data).
    pub imports_sha256: Option<String>,
    /// Mirror: the newest imported files (at most 20), newest first.
    pub files: Vec<ImportedFile>,
    /// openFDA: its `meta.last_updated`, the date of the data it served.
    pub data_last_updated: Option<String>,
}

impl DataVersion {
    /// The same data: the imports' digest on the mirror, the data's date on openFDA.
    fn same_as(&self, other: &DataVersion) -> bool {
        self.source == other.source
            && match self.source.as_str() {
                "mirror" => self.imports_sha256 == other.imports_sha256,
                _ => self.data_last_updated == other.data_last_updated,
            }
    }
}

/// One imported FDA file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportedFile {
    pub file_name: String,
    pub sha256: String,
}

/// The question exactly as it was computed, so that it can be computed again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Question {
    /// Product codes for a device text.
    Classification { text: String, limit: usize },
    /// Predicate candidates for a query and the subject's text, ranked as of a day (recency).
    PredicateSearch {
        text: Option<String>,
        #[schema(value_type = Option<String>)]
        product_code: Option<ProductCode>,
        decision_date_from: Option<NaiveDate>,
        decision_date_to: Option<NaiveDate>,
        limit: usize,
        as_of: NaiveDate,
        subject_text: String,
    },
}

/// What an answer was computed from; stored in the interaction's output as `provenance`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    pub ranking_version: String,
    pub data: DataVersion,
    pub question: Question,
}

/// One item of an answer: a product code or a 510(k) number, and its confidence or score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnswerItem {
    pub id: String,
    pub score: f64,
}

/// The outcome of a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    pub interaction_id: i64,
    pub task_type: String,
    /// The recomputed answer is the recorded one: the same items, in the same order, with the
    /// same scores.
    pub identical: bool,
    /// The data is the one the answer was computed from. When false, the replay ran on today's
    /// data and a difference may come from the data rather than from the rules.
    pub same_data: bool,
    /// The ranking rules are the ones the answer was computed with.
    pub same_ranking_version: bool,
    pub recorded: Provenance,
    pub current_ranking_version: String,
    pub current_data: DataVersion,
    pub recorded_answer: Vec<AnswerItem>,
    pub replayed_answer: Vec<AnswerItem>,
}

/// A search's answer as a replay compares it.
fn search_answer(result: &SearchResult) -> Vec<AnswerItem> {
    result
        .results
        .iter()
        .map(|r| AnswerItem {
            id: r.candidate.k_number.clone(),
            score: r.score,
        })
        .collect()
}

/// The answer recorded in an interaction's output: its `results` (`k_number`, `score`) or its
/// suggestions (`product_code`, `confidence`), however the entry point laid them out.
fn recorded_answer(output: &Value) -> Vec<AnswerItem> {
    let item = |v: &Value, id: &str, score: &str| {
        Some(AnswerItem {
            id: v.get(id)?.as_str()?.to_string(),
            score: v.get(score)?.as_f64()?,
        })
    };
    if let Some(results) = output.get("results").and_then(Value::as_array) {
        return results
            .iter()
            .filter_map(|r| item(r, "k_number", "score"))
            .collect();
    }
    let listed = output
        .get("suggestions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| {
            // The agent route: the first suggestion, then the alternatives.
            let first = output.get("classification").cloned().into_iter();
            let rest = output
                .get("alternatives")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            first.chain(rest).collect()
        });
    listed
        .iter()
        .filter_map(|s| item(s, "product_code", "confidence"))
        .collect()
}

impl Assistant {
    /// The version of the data a source answers from now.
    async fn data_version(
        &self,
        source: &str,
        data_last_updated: Option<&str>,
    ) -> anyhow::Result<DataVersion> {
        if source != "mirror" {
            return Ok(DataVersion {
                source: source.to_string(),
                import_generation: None,
                imports_sha256: None,
                files: Vec::new(),
                data_last_updated: data_last_updated.map(String::from),
            });
        }
        let imports = store::imported_files(&self.db).await?;
        let mut digest = Sha256::new();
        for (_, _, sha) in &imports {
            digest.update(sha.as_bytes());
            digest.update(b"\n");
        }
        Ok(DataVersion {
            source: source.to_string(),
            import_generation: Some(imports.last().map_or(0, |(id, _, _)| *id)),
            imports_sha256: Some(hex::encode(digest.finalize())),
            files: imports
                .iter()
                .rev()
                .take(LISTED_FILES)
                .map(|(_, name, sha)| ImportedFile {
                    file_name: name.clone(),
                    sha256: sha.clone(),
                })
                .collect(),
            data_last_updated: None,
        })
    }

    /// The provenance of a classification of `text` (the index is built from the mirror).
    pub(super) async fn classification_provenance(&self, text: &str, limit: usize) -> Value {
        self.provenance_value(
            "mirror",
            None,
            Question::Classification {
                text: text.to_string(),
                limit,
            },
        )
        .await
    }

    /// The provenance of a predicate search's result (`query` as ranked: see
    /// [`PredicateQuery::pinned`]).
    pub(super) async fn search_provenance(
        &self,
        query: &PredicateQuery,
        subject_text: &str,
        result: &SearchResult,
    ) -> Value {
        let question = Question::PredicateSearch {
            text: query.text.clone(),
            product_code: query.product_code.clone(),
            decision_date_from: query.decision_date_from,
            decision_date_to: query.decision_date_to,
            limit: query.limit,
            as_of: query.ranked_on(),
            subject_text: subject_text.to_string(),
        };
        self.provenance_value(
            &result.meta.source,
            result.meta.data_last_updated.as_deref(),
            question,
        )
        .await
    }

    /// The provenance as stored JSON; `null` when the data's version cannot be read (the answer
    /// is still recorded, and a replay says it cannot be replayed).
    async fn provenance_value(
        &self,
        source: &str,
        data_last_updated: Option<&str>,
        question: Question,
    ) -> Value {
        match self.data_version(source, data_last_updated).await {
            Ok(data) => serde_json::to_value(Provenance {
                ranking_version: RANKING_VERSION.to_string(),
                data,
                question,
            })
            .unwrap_or(Value::Null),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "answer recorded without provenance"
                );
                Value::Null
            }
        }
    }

    /// Computes interaction `id`'s answer again and compares it with the recorded one.
    pub async fn replay(&self, id: i64) -> Result<Replay, ApiError> {
        let interaction = agent::find(&self.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("assistant interaction {id}")))?;
        let output = &interaction.output.0;
        let recorded: Provenance = output
            .get("provenance")
            .filter(|p| !p.is_null())
            .and_then(|p| serde_json::from_value(p.clone()).ok())
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "assistant interaction {id} ({}) records no provenance: it was computed before \
                     answers were replayable, or it is not a suggestion or a predicate search",
                    interaction.task_type
                ))
            })?;
        let (replayed_answer, current_data) = match &recorded.question {
            Question::Classification { text, limit } => {
                let index = self.classifier.index(&self.db).await?;
                let answer = index
                    .suggest(text, *limit)
                    .into_iter()
                    .map(|s| AnswerItem {
                        id: s.product_code,
                        score: s.confidence,
                    })
                    .collect();
                (answer, self.data_version("mirror", None).await?)
            }
            Question::PredicateSearch {
                text,
                product_code,
                decision_date_from,
                decision_date_to,
                limit,
                as_of,
                subject_text,
            } => {
                let query = PredicateQuery {
                    text: text.clone(),
                    product_code: product_code.clone(),
                    decision_date_from: *decision_date_from,
                    decision_date_to: *decision_date_to,
                    limit: *limit,
                    as_of: Some(*as_of),
                };
                let result = self.search.predicates(&query, subject_text).await?;
                let data = self
                    .data_version(
                        &result.meta.source,
                        result.meta.data_last_updated.as_deref(),
                    )
                    .await?;
                (search_answer(&result), data)
            }
        };
        let recorded_answer = recorded_answer(output);
        Ok(Replay {
            interaction_id: id,
            task_type: interaction.task_type.clone(),
            identical: recorded_answer == replayed_answer,
            same_data: recorded.data.same_as(&current_data),
            same_ranking_version: recorded.ranking_version == RANKING_VERSION,
            current_ranking_version: RANKING_VERSION.to_string(),
            current_data,
            recorded_answer,
            replayed_answer,
            recorded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_recorded_answer_is_read_from_each_layout() {
        let search = json!({"results": [{"k_number": "K1", "score": 0.5}, {"k_number": "K2", "score": 0.25}]});
        assert_eq!(
            recorded_answer(&search),
            vec![
                AnswerItem {
                    id: "K1".into(),
                    score: 0.5
                },
                AnswerItem {
                    id: "K2".into(),
                    score: 0.25
                }
            ]
        );
        let project = json!({"suggestions": [{"product_code": "FRN", "confidence": 0.8}]});
        assert_eq!(recorded_answer(&project)[0].id, "FRN");
        let agent = json!({"classification": {"product_code": "FRN", "confidence": 0.8},
            "alternatives": [{"product_code": "MEB", "confidence": 0.1}]});
        let ids: Vec<String> = recorded_answer(&agent).into_iter().map(|a| a.id).collect();
        assert_eq!(ids, ["FRN", "MEB"]);
    }

    #[test]
    fn data_is_the_same_when_its_imports_or_date_are() {
        let mirror = |generation, digest: &str| DataVersion {
            source: "mirror".into(),
            import_generation: Some(generation),
            imports_sha256: Some(digest.into()),
            files: Vec::new(),
            data_last_updated: None,
        };
        assert!(mirror(3, "a").same_as(&mirror(3, "a")));
        assert!(!mirror(3, "a").same_as(&mirror(4, "b")));
        let openfda = |date: &str| DataVersion {
            source: "openfda".into(),
            import_generation: None,
            imports_sha256: None,
            files: Vec::new(),
            data_last_updated: Some(date.into()),
        };
        assert!(openfda("2026-12-01").same_as(&openfda("2026-12-01")));
        assert!(!openfda("2026-12-01").same_as(&openfda("2026-12-05")));
        assert!(!openfda("2026-12-01").same_as(&mirror(1, "a")));
    }
}
