//! The fake's reading of openFDA's `search=` syntax, for the fields and forms the service uses:
//! `field:"phrase"`, `field:word`, `field:[A TO B]` on dates, `AND`, `OR` or a space (OR),
//! `NOT`, and parentheses. Anything else is a parse error (openFDA answers those with a 500
//! `SERVER_ERROR` carrying details).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Phrase(String, Vec<String>),
    Range(String, String, String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Clause(String, Value2),
}

#[derive(Debug, Clone, PartialEq)]
enum Value2 {
    Words(Vec<String>),
    Range(String, String),
}

/// Lowercase alphanumeric words, as openFDA's analyser splits text.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn lex(input: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' {
            out.push(Tok::Open);
            i += 1;
            continue;
        }
        if c == ')' {
            out.push(Tok::Close);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.'))
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if word.is_empty() {
            return Err(format!("unexpected character {c:?} at {start}"));
        }
        match word.as_str() {
            "AND" => {
                out.push(Tok::And);
                continue;
            }
            "OR" => {
                out.push(Tok::Or);
                continue;
            }
            "NOT" => {
                out.push(Tok::Not);
                continue;
            }
            _ => {}
        }
        if chars.get(i) != Some(&':') {
            return Err(format!("expected field:value at {start}"));
        }
        i += 1;
        let value = match chars.get(i) {
            Some('"') => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or("unterminated quote")?;
                let phrase: String = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                Value2::Words(tokens(&phrase))
            }
            Some('[') => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or("unterminated range")?;
                let inner: String = chars[i + 1..i + end].iter().collect();
                i += end + 1;
                let parts: Vec<&str> = inner.split_whitespace().collect();
                match parts.as_slice() {
                    [a, "TO", b] => Value2::Range(a.replace('-', ""), b.replace('-', "")),
                    _ => return Err(format!("bad range [{inner}]")),
                }
            }
            _ => {
                let vstart = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '-' | '.'))
                {
                    i += 1;
                }
                let raw: String = chars[vstart..i].iter().collect();
                if raw.is_empty() {
                    return Err(format!("empty value for {word}"));
                }
                Value2::Words(tokens(&raw))
            }
        };
        out.push(Tok::Clause(word, value));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and_expr()?;
        loop {
            match self.peek() {
                Some(Tok::Or) => {
                    self.pos += 1;
                }
                Some(Tok::Open | Tok::Not | Tok::Clause(..)) => {}
                _ => return Ok(left),
            }
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let inner = self.or_expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("missing )".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::Clause(field, Value2::Words(words))) => {
                self.pos += 1;
                Ok(Expr::Phrase(field, words))
            }
            Some(Tok::Clause(field, Value2::Range(a, b))) => {
                self.pos += 1;
                Ok(Expr::Range(field, a, b))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

pub fn parse(input: &str) -> Result<Expr, String> {
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err("empty search".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let expr = p.or_expr()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected trailing {:?}", p.toks[p.pos]));
    }
    Ok(expr)
}

/// The string values at `path` (`a.b`; arrays flattened).
fn values<'a>(record: &'a Value, path: &str) -> Vec<&'a str> {
    let path = path.strip_suffix(".exact").unwrap_or(path);
    let mut node = record;
    for part in path.split('.') {
        match node.get(part) {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    match node {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Fields searched often enough that the fake keeps their words ready.
pub const INDEXED: &[&str] = &[
    "device_name",
    "product_code",
    "k_number",
    "k_numbers",
    "recall_number",
];

/// A record with the words of its indexed fields.
pub struct Doc {
    pub value: Value,
    pub words: Vec<(&'static str, Vec<Vec<String>>)>,
}

impl Doc {
    pub fn new(value: Value) -> Doc {
        let words = INDEXED
            .iter()
            .map(|f| (*f, values(&value, f).iter().map(|v| tokens(v)).collect()))
            .collect();
        Doc { value, words }
    }
}

pub fn matches(expr: &Expr, doc: &Doc) -> bool {
    let record = &doc.value;
    match expr {
        Expr::Phrase(field, words) => {
            if words.is_empty() {
                return false;
            }
            let hit = |toks: &[String]| toks.windows(words.len()).any(|w| w == words.as_slice());
            match doc.words.iter().find(|(f, _)| *f == field.as_str()) {
                Some((_, lists)) => lists.iter().any(|t| hit(t)),
                None => values(record, field).iter().any(|v| hit(&tokens(v))),
            }
        }
        Expr::Range(field, from, to) => values(record, field).iter().any(|v| {
            let v = v.replace('-', "");
            v.len() == 8 && v.as_str() >= from.as_str() && v.as_str() <= to.as_str()
        }),
        Expr::And(a, b) => matches(a, doc) && matches(b, doc),
        Expr::Or(a, b) => matches(a, doc) || matches(b, doc),
        Expr::Not(a) => !matches(a, doc),
    }
}

/// Word -> documents, per indexed field, so a search touches only the documents it names.
#[derive(Default)]
pub struct Index {
    postings: std::collections::HashMap<(&'static str, String), Vec<usize>>,
}

impl Index {
    pub fn new(docs: &[Doc]) -> Index {
        let mut index = Index::default();
        for (i, doc) in docs.iter().enumerate() {
            for (field, lists) in &doc.words {
                for word in lists.iter().flatten() {
                    let ids = index.postings.entry((*field, word.clone())).or_default();
                    if ids.last() != Some(&i) {
                        ids.push(i);
                    }
                }
            }
        }
        index
    }
}

/// The ids (ascending) of the documents matching `expr`.
pub fn eval(expr: &Expr, docs: &[Doc], index: &Index) -> Vec<usize> {
    let scan = |e: &Expr| {
        (0..docs.len())
            .filter(|&i| matches(e, &docs[i]))
            .collect::<Vec<_>>()
    };
    match expr {
        Expr::Phrase(field, words) => match INDEXED.iter().find(|f| **f == field.as_str()) {
            Some(f) => match words.first() {
                Some(first) => index
                    .postings
                    .get(&(*f, first.clone()))
                    .map(|ids| {
                        ids.iter()
                            .copied()
                            .filter(|&i| matches(expr, &docs[i]))
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            },
            None => scan(expr),
        },
        Expr::Range(..) => scan(expr),
        Expr::And(a, b) => {
            let left = eval(a, docs, index);
            left.into_iter().filter(|&i| matches(b, &docs[i])).collect()
        }
        Expr::Or(a, b) => {
            let mut ids = eval(a, docs, index);
            ids.extend(eval(b, docs, index));
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        Expr::Not(a) => {
            let out: std::collections::HashSet<usize> = eval(a, docs, index).into_iter().collect();
            (0..docs.len()).filter(|i| !out.contains(i)).collect()
        }
    }
}
