//! Text analysis shared by predicate search, ranking and classification: the one tokeniser
//! ([`words`]), a medical-device stop-word list, the words a search asks for, Porter stemming,
//! and BM25 scoring.

use std::collections::{HashMap, HashSet};

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

/// The tokeniser: the lowercase words of `text` (runs of letters and digits), in order.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// True for a word that can tell devices apart: two characters or more, not only digits, not a
/// stop word. Letters with digits ("co2", "3d") count.
pub fn is_significant(word: &str) -> bool {
    word.chars().nth(1).is_some()
        && !word.chars().all(|c| c.is_ascii_digit())
        && !is_stop_word(word)
}

/// How many words of a text a search asks for: the first ones carry the device's name.
pub const MAX_SEARCH_WORDS: usize = 8;

/// The distinct significant words of free text, the first [`MAX_SEARCH_WORDS`] in order of
/// appearance: what a predicate search asks its source for. Empty means the text names nothing.
pub fn significant_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(text).filter(|w| is_significant(w)) {
        if !out.contains(&w) {
            out.push(w);
        }
        if out.len() == MAX_SEARCH_WORDS {
            break;
        }
    }
    out
}

/// The stemmed significant words of `text`, in order: what ranking and classification compare.
pub fn terms(text: &str) -> Vec<String> {
    thread_local! {
        static STEMMER: Stemmer = Stemmer::create(Algorithm::English);
    }
    STEMMER.with(|stemmer| {
        words(text)
            .filter(|w| is_significant(w))
            .map(|w| stemmer.stem(&w).into_owned())
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
        // A set, not a list: a query of n distinct terms costs n lookups, not n² comparisons.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut score = 0.0;
        for term in query {
            if !seen.insert(term.as_str()) {
                continue;
            }
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
        let mut seen: HashSet<&str> = HashSet::new();
        let mut total = 0.0;
        for term in query {
            if seen.insert(term.as_str()) {
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
