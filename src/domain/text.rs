//! Text analysis shared by predicate ranking and classification: tokenising, a medical-device
//! stop-word list, Porter stemming, and BM25 scoring.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// Words that say nothing about which device something is: English function words and the
/// boilerplate of 510(k) device names ("system", "device", "kit", ...).
const STOP_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "by",
    "for",
    "from",
    "has",
    "have",
    "in",
    "into",
    "is",
    "it",
    "its",
    "of",
    "on",
    "or",
    "that",
    "the",
    "this",
    "to",
    "with",
    "without",
    "which",
    "who",
    "will",
    "used",
    "use",
    "using",
    "intended",
    "indicated",
    "indications",
    "patient",
    "patients",
    "device",
    "devices",
    "system",
    "systems",
    "kit",
    "kits",
    "model",
    "models",
    "accessory",
    "accessories",
    "set",
    "sets",
    "unit",
    "units",
    "type",
    "product",
    "products",
    "other",
    "various",
    "general",
    "purpose",
    "may",
    "can",
    "such",
    "also",
    "than",
    "other",
    "inc",
    "co",
    "ltd",
    "corp",
    "llc",
    "gmbh",
    "mm",
    "cm",
    "ml",
    "series",
    "family",
    "new",
    "ii",
    "iii",
    "iv",
    "v",
    "plus",
    "pro",
    "x",
    "one",
    "two",
];

/// True for a word that says nothing about which device something is (lowercase input).
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// The lowercased, stop-word-free, stemmed terms of `text`, in order. Numbers-only tokens and
/// single letters are dropped; letters with digits ("co2", "3d") are kept.
pub fn terms(text: &str) -> Vec<String> {
    thread_local! {
        static STEMMER: Stemmer = Stemmer::create(Algorithm::English);
    }
    let lower = text.to_lowercase();
    STEMMER.with(|stemmer| {
        lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() > 1)
            .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
            .filter(|w| !is_stop_word(w))
            .map(|w| stemmer.stem(w).into_owned())
            .collect()
    })
}

/// BM25 (k1 = 1.2, b = 0.75) over a fixed set of documents, each a list of terms.
pub struct Bm25 {
    doc_terms: Vec<HashMap<String, u32>>,
    doc_len: Vec<f64>,
    avg_len: f64,
    doc_freq: HashMap<String, u32>,
}

impl Bm25 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;

    pub fn new(docs: &[Vec<String>]) -> Self {
        let mut doc_freq: HashMap<String, u32> = HashMap::new();
        let mut doc_terms = Vec::with_capacity(docs.len());
        let mut doc_len = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in doc {
                *tf.entry(t.clone()).or_default() += 1;
            }
            for t in tf.keys() {
                *doc_freq.entry(t.clone()).or_default() += 1;
            }
            doc_len.push(doc.len() as f64);
            doc_terms.push(tf);
        }
        let avg_len = if docs.is_empty() {
            1.0
        } else {
            (doc_len.iter().sum::<f64>() / docs.len() as f64).max(1.0)
        };
        Self {
            doc_terms,
            doc_len,
            avg_len,
            doc_freq,
        }
    }

    /// Inverse document frequency, never negative.
    pub fn idf(&self, term: &str) -> f64 {
        let n = self.doc_terms.len() as f64;
        let df = f64::from(self.doc_freq.get(term).copied().unwrap_or(0));
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The BM25 score of document `doc` for `query` (each distinct query term counted once).
    pub fn score(&self, query: &[String], doc: usize) -> f64 {
        let Some(tf) = self.doc_terms.get(doc) else {
            return 0.0;
        };
        let len_norm = 1.0 - Self::B + Self::B * self.doc_len[doc] / self.avg_len;
        let mut seen: Vec<&String> = Vec::new();
        let mut score = 0.0;
        for term in query {
            if seen.contains(&term) {
                continue;
            }
            seen.push(term);
            let f = f64::from(tf.get(term).copied().unwrap_or(0));
            if f > 0.0 {
                score += self.idf(term) * f * (Self::K1 + 1.0) / (f + Self::K1 * len_norm);
            }
        }
        score
    }

    /// The best score any document could reach for `query`: every distinct term present once in
    /// a document of average length. Scores divided by this land in 0..~1.
    pub fn ideal(&self, query: &[String]) -> f64 {
        let mut seen: Vec<&String> = Vec::new();
        let mut total = 0.0;
        for term in query {
            if !seen.contains(&term) {
                seen.push(term);
                total += self.idf(term);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_stemmed_and_stop_words_dropped() {
        assert_eq!(
            terms("The Infusion Pumps system, for patients (Model 3)"),
            vec!["infus", "pump"]
        );
        assert_eq!(terms("CO2 laser"), vec!["co2", "laser"]);
    }

    #[test]
    fn bm25_prefers_the_document_with_the_rare_term() {
        let docs = vec![
            terms("infusion pump"),
            terms("catheter infusion"),
            terms("blood pressure cuff"),
        ];
        let index = Bm25::new(&docs);
        let q = terms("pump for infusion");
        assert!(index.score(&q, 0) > index.score(&q, 1));
        assert_eq!(index.score(&q, 2), 0.0);
        assert!(index.score(&q, 0) <= index.ideal(&q) * 1.5);
    }
}
