//! The layering rules of `docs/ARCHITECTURE.md`, checked on the source: each top-level module of
//! `src/` imports (`crate::…` paths, macros included) only modules of a lower layer, so there is
//! no import cycle; nothing below the web layer names axum or the application state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["error", "config"],
    &["redis_link"],
    &["telemetry", "db", "cache", "rate_limit"],
    &["openfda", "mirror", "backup"],
    &["audit", "search"],
    &["accounts", "assistant"],
    &["http"],
    &["app"],
];

/// The web layer and the composition root: the only modules that may name axum or `AppState`.
const WEB: &[&str] = &["http", "app"];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/architecture.rs"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The source without `//` comments (doc links are not imports).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segments after each `crate::` (in `use crate::{a, b::c}` too).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(found) = code[at..].find("crate::") {
        let start = at + found;
        at = start + "crate::".len();
        // `$crate::` inside a macro names the defining crate, not a module.
        if start > 0 && (bytes[start - 1] == b'$' || is_ident(bytes[start - 1])) {
            continue;
        }
        if bytes.get(at) == Some(&b'{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, &b) in bytes[at..].iter().enumerate() {
                match b {
                    b'{' => {
                        depth += 1;
                        if depth == 1 {
                            item_start = true;
                        }
                        continue;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            at += i;
                            break;
                        }
                    }
                    b',' if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    _ => {}
                }
                if item_start && depth == 1 && is_ident(b) {
                    out.insert(ident_at(code, at + i));
                    item_start = false;
                }
            }
        } else {
            out.insert(ident_at(code, at));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn ident_at(code: &str, at: usize) -> String {
    code[at..]
        .bytes()
        .take_while(|&b| is_ident(b))
        .map(char::from)
        .collect()
}

/// True when `word` appears in `code` as a whole identifier.
fn names(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].bytes().last().is_none_or(|b| !is_ident(b));
        let after = code[i + word.len()..]
            .bytes()
            .next()
            .is_none_or(|b| !is_ident(b));
        before && after
    })
}

struct Source {
    /// Module -> (file, code without comments).
    files: BTreeMap<String, Vec<(PathBuf, String)>>,
    /// Exported macro -> the module that defines it.
    macros: BTreeMap<String, String>,
}

fn read_source() -> Source {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut macros = BTreeMap::new();
    for path in paths {
        let Some(module) = module_of(&src, &path) else {
            continue;
        };
        let text = code(&std::fs::read_to_string(&path).unwrap());
        for (i, _) in text.match_indices("macro_rules!") {
            let name = ident_at(&text, i + "macro_rules!".len() + 1);
            macros.insert(name, module.clone());
        }
        files.entry(module).or_default().push((path, text));
    }
    Source { files, macros }
}

/// Module -> the modules it imports, each with a file that does.
fn imports(source: &Source) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (module, files) in &source.files {
        let edges = graph.entry(module.clone()).or_default();
        for (path, text) in files {
            for target in crate_paths(text) {
                let target = source.macros.get(&target).cloned().unwrap_or(target);
                if &target != module && source.files.contains_key(&target) {
                    edges.entry(target).or_insert_with(|| path.clone());
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_imports_only_lower_layers() {
    let source = read_source();
    let mut broken = Vec::new();
    for (module, targets) in imports(&source) {
        for (target, file) in targets {
            if layer_of(&target) >= layer_of(&module) {
                broken.push(format!("{module} imports {target} ({})", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn nothing_below_the_web_layer_names_axum_or_the_application_state() {
    let source = read_source();
    let mut broken = Vec::new();
    for (module, files) in &source.files {
        if WEB.contains(&module.as_str()) {
            continue;
        }
        for (path, text) in files {
            for word in ["axum", "AppState"] {
                if names(text, word) {
                    broken.push(format!("{} names {word}", path.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_imports_in_every_form() {
    let text = code(
        "use crate::db::Db;\nuse crate::{audit::{Actor, Change}, error};\n\
         // crate::app in a comment\nlet x = crate::search::run();\n$crate::db::Tx",
    );
    let found: Vec<String> = crate_paths(&text).into_iter().collect();
    assert_eq!(found, ["audit", "db", "error", "search"]);
    assert!(names("use axum::Router;", "axum"));
    assert!(!names("use utoipa_axum::routes;", "axum"));
}
