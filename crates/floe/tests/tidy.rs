//! The repository's own rules, checked on every `cargo test --workspace`: every Rust source
//! file opens with a `//!` line, every path that a document or a comment cites exists, the
//! documents narrate no development history, and `docs/ARCHITECTURE.md` names only files
//! and folders that exist.
//!
//! The checks read the working tree from the workspace root (two levels above this crate),
//! skipping build output (`target/`), version control and fuzzing's corpora. Each check is
//! a function over a [`Workspace`], so the unit tests at the end run it on small planted
//! trees and prove it fails where it should.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

/// Directory names that are never walked: build output and version control.
const SKIPPED_NAMES: [&str; 3] = ["target", ".git", "node_modules"];

/// Paths (from the root) that are never walked: cargo-fuzz's inputs and findings.
const SKIPPED_PATHS: [&str; 2] = ["fuzz/corpus", "fuzz/artifacts"];

/// The top-level folders whose `.rs` files must open with a `//!` line.
const SOURCE_ROOTS: [&str; 4] = ["crates/", "xtask/", "benches/", "fuzz/"];

/// File extensions that make a backticked token with a `/` a path to check.
const PATH_EXTENSIONS: [&str; 9] = [
    "rs", "md", "toml", "json", "svg", "sst", "lock", "sh", "yml",
];

/// File extensions that make a bare backticked name in `docs/ARCHITECTURE.md` a file name.
const NAME_EXTENSIONS: [&str; 4] = ["rs", "md", "toml", "json"];

/// The files of a tree, with the text of the ones the checks read.
#[derive(Debug, Default)]
struct Workspace {
    /// Every file, relative to the root, `/`-separated.
    files: BTreeSet<String>,
    /// Every directory that holds a file, relative to the root, `/`-separated.
    dirs: BTreeSet<String>,
    /// The path and text of every `.rs` file and every checked Markdown file.
    texts: Vec<(String, String)>,
}

/// One broken rule, at a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    path: String,
    line: usize,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

impl Workspace {
    /// A tree of `files` (path, text), as a test plants it.
    fn from_files(files: &[(&str, &str)]) -> Workspace {
        let mut ws = Workspace::default();
        for (path, text) in files {
            ws.add(path, Some((*text).to_string()));
        }
        ws
    }

    /// The working tree under `root`.
    fn walk(root: &Path) -> Workspace {
        let mut ws = Workspace::default();
        let mut stack = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            for entry in entries {
                let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let kind = entry
                    .file_type()
                    .unwrap_or_else(|e| panic!("cannot stat {path}: {e}"));
                if kind.is_dir() {
                    if !SKIPPED_NAMES.contains(&name.as_str())
                        && !SKIPPED_PATHS.contains(&path.as_str())
                    {
                        ws.dirs.insert(path.clone());
                        stack.push((entry.path(), path));
                    }
                } else if kind.is_file() {
                    let text = is_read(&path).then(|| {
                        std::fs::read_to_string(entry.path())
                            .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
                    });
                    ws.add(&path, text);
                }
            }
        }
        ws.texts.sort();
        ws
    }

    /// Records the file `path` (and its directories), with its text if the checks read it.
    fn add(&mut self, path: &str, text: Option<String>) {
        let mut dir = parent(path);
        while !dir.is_empty() && self.dirs.insert(dir.to_string()) {
            dir = parent(dir);
        }
        self.files.insert(path.to_string());
        if let Some(text) = text.filter(|_| is_read(path)) {
            self.texts.push((path.to_string(), text));
        }
    }

    /// Whether `path` is a file, or a directory when `dir`, or either when `dir` is false.
    fn has(&self, path: &str, dir: bool) -> bool {
        self.dirs.contains(path) || (!dir && self.files.contains(path))
    }

    /// Whether a file or directory whose path ends in `/{tail}` lies under `root` (the
    /// whole tree when `root` is empty).
    fn has_under(&self, root: &str, tail: &str, dir: bool) -> bool {
        let found = |p: &String| {
            (root.is_empty() || p.starts_with(&format!("{root}/")))
                && (p == tail || p.ends_with(&format!("/{tail}")))
        };
        self.dirs.iter().any(found) || (!dir && self.files.iter().any(found))
    }

    /// The crate that `path` belongs to: the nearest directory above it with a
    /// `Cargo.toml` (the root's does not count: it is the workspace's).
    fn crate_of<'a>(&self, path: &'a str) -> Option<&'a str> {
        let mut dir = parent(path);
        while !dir.is_empty() {
            if self.files.contains(&format!("{dir}/Cargo.toml")) {
                return Some(dir);
            }
            dir = parent(dir);
        }
        None
    }

    /// Every crate directory of the tree.
    fn crates(&self) -> Vec<&str> {
        self.files
            .iter()
            .filter_map(|f| f.strip_suffix("/Cargo.toml"))
            .collect()
    }

    /// The `.rs` files with their text.
    fn rust_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.texts
            .iter()
            .filter(|(p, _)| p.ends_with(".rs"))
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }

    /// The checked Markdown files (the README and everything under `docs/`) with their text.
    fn documents(&self) -> impl Iterator<Item = (&str, &str)> {
        self.texts
            .iter()
            .filter(|(p, _)| p.ends_with(".md"))
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }
}

/// Whether the checks read `path`: Rust sources, the README and the documents.
fn is_read(path: &str) -> bool {
    path.ends_with(".rs")
        || path == "README.md"
        || (path.starts_with("docs/") && path.ends_with(".md"))
}

/// The directory part of `path` (empty at the root).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `base/rel` with `.` and `..` resolved; `None` if it leaves the root.
fn join(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A stretch of text from one file, with the line each of its lines came from.
struct Text {
    joined: String,
    /// The byte offset in `joined` where each line starts, with its line number.
    starts: Vec<(usize, usize)>,
}

impl Text {
    fn new<'a>(lines: impl IntoIterator<Item = (usize, &'a str)>) -> Text {
        let mut joined = String::new();
        let mut starts = Vec::new();
        for (number, line) in lines {
            if !starts.is_empty() {
                joined.push('\n');
            }
            starts.push((joined.len(), number));
            joined.push_str(line);
        }
        Text { joined, starts }
    }

    /// The line number of byte `offset`.
    fn line_at(&self, offset: usize) -> usize {
        let i = self.starts.partition_point(|&(start, _)| start <= offset);
        self.starts[i.saturating_sub(1)].1
    }

    /// The contents of every code span (text between matching runs of backticks), with
    /// the line it starts on.
    fn code_spans(&self) -> Vec<(usize, &str)> {
        let text = self.joined.as_str();
        let bytes = text.as_bytes();
        let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'`' {
                i += 1;
                continue;
            }
            let open = run_at(i);
            let start = i + open;
            let mut j = start;
            let mut close = None;
            while j < bytes.len() {
                if bytes[j] == b'`' {
                    let run = run_at(j);
                    if run == open {
                        close = Some(j);
                        break;
                    }
                    j += run;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => {
                    spans.push((self.line_at(i), text[start..end].trim()));
                    i = end + open;
                }
                None => i = start,
            }
        }
        spans
    }

    /// The target of every Markdown link or image outside code spans, with its line.
    fn link_targets(&self) -> Vec<(usize, &str)> {
        let text = self.joined.as_str();
        let mut in_code = vec![false; text.len()];
        for (_, span) in self.code_spans() {
            let start = span.as_ptr() as usize - text.as_ptr() as usize;
            in_code[start..start + span.len()].fill(true);
        }
        let mut targets = Vec::new();
        let mut from = 0;
        while let Some(at) = text[from..].find("](") {
            let start = from + at + 2;
            from = start;
            if in_code[start - 2] {
                continue;
            }
            let Some(len) = text[start..].find(')') else {
                break;
            };
            let target = &text[start..start + len];
            if !target.is_empty() && !target.contains(char::is_whitespace) {
                targets.push((self.line_at(start), target));
            }
        }
        targets
    }
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Text {
    let mut in_fence = false;
    Text::new(text.lines().enumerate().filter_map(|(i, line)| {
        let fence = line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~");
        if fence {
            in_fence = !in_fence;
            return None;
        }
        (!in_fence).then_some((i + 1, line))
    }))
}

/// Each block of consecutive `//` comment lines of a Rust source, with the comment markers
/// (`//`, `///`, `//!`) removed, numbered from 1.
fn comment_blocks(source: &str) -> Vec<Text> {
    let mut blocks = Vec::new();
    let mut current: Vec<(usize, &str)> = Vec::new();
    for (i, line) in source.lines().enumerate() {
        match line.trim_start().strip_prefix("//") {
            Some(rest) => {
                let rest = rest
                    .strip_prefix('/')
                    .or_else(|| rest.strip_prefix('!'))
                    .unwrap_or(rest);
                current.push((i + 1, rest));
            }
            None if !current.is_empty() => blocks.push(Text::new(current.drain(..))),
            None => {}
        }
    }
    if !current.is_empty() {
        blocks.push(Text::new(current));
    }
    blocks
}

/// Whether a code span is meant as a path in the repository: no spaces or patterns, not
/// absolute, not build output, and either relative (`./`, `../`) or with a `/` and a
/// known extension or a trailing `/`.
fn is_repo_path(token: &str) -> bool {
    let plain = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if !plain || token.starts_with('/') || token.contains("//") {
        return false;
    }
    if let Some(rest) = token
        .strip_prefix("./")
        .or_else(|| token.strip_prefix("../"))
    {
        return rest.chars().any(|c| c.is_ascii_alphanumeric());
    }
    if !token.contains('/') || token.split('/').next() == Some("target") {
        return false;
    }
    token.ends_with('/') || has_extension(token, &PATH_EXTENSIONS)
}

/// Whether the last component of `token` ends in `.{ext}` for one of `extensions`.
fn has_extension(token: &str, extensions: &[&str]) -> bool {
    let name = token.rsplit('/').next().unwrap_or(token);
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && extensions.contains(&ext))
}

/// Whether a path cited in `from` exists. Relative paths (`./`, `../`) resolve against the
/// citing file's directory only; others against the root, that directory, the citing
/// file's crate and its `src/`, and, from a document, every crate and its `src/`.
fn cited_path_exists(ws: &Workspace, from: &str, token: &str) -> bool {
    let dir = token.ends_with('/');
    let path = token.trim_end_matches('/');
    let here = parent(from);
    if path.starts_with("./") || path.starts_with("../") {
        return join(here, path).is_some_and(|p| ws.has(&p, dir));
    }
    let mut bases = vec![String::new(), here.to_string()];
    let crates = if from.ends_with(".md") {
        ws.crates()
    } else {
        ws.crate_of(from).into_iter().collect()
    };
    for krate in crates {
        bases.push(krate.to_string());
        bases.push(format!("{krate}/src"));
    }
    bases
        .iter()
        .filter_map(|base| join(base, path))
        .any(|p| ws.has(&p, dir))
}

/// Every `.rs` file under the source roots must open with a `//!` line: its first
/// non-blank line says what the module is for. An inner attribute (`#![no_main]`) comes
/// after that line, never before it.
fn check_module_docs(ws: &Workspace) -> Vec<Violation> {
    let found = ws
        .rust_files()
        .filter(|(path, _)| SOURCE_ROOTS.iter().any(|root| path.starts_with(root)))
        .filter_map(|(path, text)| {
            let first = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty());
            match first {
                Some((_, line)) if line.starts_with("//!") => None,
                Some((i, line)) => Some(Violation {
                    path: path.to_string(),
                    line: i + 1,
                    message: format!(
                        "a source file opens with a `//!` line saying what it is for; this one opens with `{}`",
                        line.trim()
                    ),
                }),
                None => Some(Violation {
                    path: path.to_string(),
                    line: 1,
                    message: "an empty source file: it should at least open with a `//!` line"
                        .to_string(),
                }),
            }
        })
        .collect();
    sorted(found)
}

/// `found` in file and line order (a stable sort: one line's violations keep their order).
fn sorted(mut found: Vec<Violation>) -> Vec<Violation> {
    found.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    found
}

/// Every path that the README, a document or a `//` comment cites in backticks, and every
/// relative link target of the README and the documents, must exist.
fn check_cited_paths(ws: &Workspace) -> Vec<Violation> {
    let mut found = Vec::new();
    let missing = |path: &str, line: usize, token: &str, what: &str| Violation {
        path: path.to_string(),
        line,
        message: format!("{what} `{token}`, which is not in the repository"),
    };
    for (path, text) in ws.documents() {
        let prose = prose_lines(text);
        for (line, token) in prose.code_spans() {
            if is_repo_path(token) && !cited_path_exists(ws, path, token) {
                found.push(missing(path, line, token, "cites"));
            }
        }
        for (line, target) in prose.link_targets() {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            let exists = join(parent(path), file.trim_end_matches('/'))
                .is_some_and(|p| ws.has(&p, file.ends_with('/')));
            if !exists {
                found.push(missing(path, line, target, "links to"));
            }
        }
    }
    for (path, text) in ws.rust_files() {
        for block in comment_blocks(text) {
            for (line, token) in block.code_spans() {
                if is_repo_path(token) && !cited_path_exists(ws, path, token) {
                    found.push(missing(path, line, token, "a comment cites"));
                }
            }
        }
    }
    sorted(found)
}

/// Whether a code span looks like an abbreviated commit hash: 7 to 12 lowercase hex
/// digits with at least one digit and one letter.
fn is_commit_hash(token: &str) -> bool {
    (7..=12).contains(&token.len())
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_lowercase())
}

/// The README and the documents are reference: they never say "session", and neither
/// they nor a comment name a commit (a hash-like code span, or in documents' prose a
/// hash-like word).
fn check_no_history(ws: &Workspace) -> Vec<Violation> {
    let mut found = Vec::new();
    for (path, text) in ws.documents() {
        for (i, line) in text.lines().enumerate() {
            if line.to_ascii_lowercase().contains("session") {
                found.push(Violation {
                    path: path.to_string(),
                    line: i + 1,
                    message:
                        "the word \"session\" narrates development history; say what is true now"
                            .to_string(),
                });
            }
        }
        let prose = prose_lines(text);
        let mut hashes: Vec<(usize, &str)> = prose
            .code_spans()
            .into_iter()
            .filter(|(_, t)| is_commit_hash(t))
            .collect();
        let words = prose
            .joined
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        let mut offset = 0;
        for word in words {
            let at = prose.joined[offset..]
                .find(word)
                .map_or(offset, |i| offset + i);
            offset = at + word.len();
            if is_commit_hash(word) && !prose.joined[..at].ends_with('`') {
                hashes.push((prose.line_at(at), word));
            }
        }
        for (line, hash) in hashes {
            found.push(Violation {
                path: path.to_string(),
                line,
                message: format!("`{hash}` looks like a commit hash: documents describe the code, not its history"),
            });
        }
    }
    for (path, text) in ws.rust_files() {
        for block in comment_blocks(text) {
            for (line, token) in block.code_spans() {
                if is_commit_hash(token) {
                    found.push(Violation {
                        path: path.to_string(),
                        line,
                        message: format!(
                            "a comment names `{token}`, which looks like a commit hash"
                        ),
                    });
                }
            }
        }
    }
    sorted(found)
}

/// Every file or folder that `docs/ARCHITECTURE.md` names in backticks exists: a name or
/// path under a heading that names folders (`crates/floe-engine`, `xtask/`) lies under one
/// of them, and anywhere in the tree under other headings. Paths that resolve from the
/// root always count.
fn check_architecture(ws: &Workspace) -> Vec<Violation> {
    const DOC: &str = "docs/ARCHITECTURE.md";
    let Some((_, text)) = ws.documents().find(|(p, _)| *p == DOC) else {
        return vec![Violation {
            path: DOC.to_string(),
            line: 1,
            message: "the architecture document is missing".to_string(),
        }];
    };
    let mut found = Vec::new();
    let mut roots: Vec<String> = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let spans = Text::new([(i + 1, line)]);
        if trimmed.starts_with('#') {
            roots = spans
                .code_spans()
                .into_iter()
                .map(|(_, t)| t.trim_end_matches('/').to_string())
                .filter(|t| ws.has(t, true))
                .collect();
            continue;
        }
        for (_, token) in spans.code_spans() {
            let named = if token.contains('/') {
                is_repo_path(token)
            } else {
                has_extension(token, &NAME_EXTENSIONS)
            };
            if !named {
                continue;
            }
            let dir = token.ends_with('/');
            let tail = token.trim_end_matches('/');
            let exists = join("", tail).is_some_and(|p| ws.has(&p, dir))
                || join("docs", tail).is_some_and(|p| ws.has(&p, dir))
                || if roots.is_empty() {
                    ws.has_under("", tail, dir)
                } else {
                    roots.iter().any(|root| ws.has_under(root, tail, dir))
                };
            if !exists {
                let place = if roots.is_empty() {
                    "the repository".to_string()
                } else {
                    roots.join(", ")
                };
                found.push(Violation {
                    path: DOC.to_string(),
                    line: i + 1,
                    message: format!("names `{token}`, which is not in {place}"),
                });
            }
        }
    }
    found
}

/// The working tree, walked once for all the checks.
fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let ws = Workspace::walk(&root);
        assert!(
            ws.files.contains("Cargo.toml") && ws.dirs.contains("crates"),
            "{} is not the workspace root",
            root.display()
        );
        ws
    })
}

/// Fails with every violation, one per line, under `rule`.
fn assert_none(rule: &str, found: Vec<Violation>) {
    if !found.is_empty() {
        let list: Vec<String> = found.iter().map(ToString::to_string).collect();
        panic!("{rule}: {} violation(s)\n{}", found.len(), list.join("\n"));
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    assert_none(
        "every .rs file opens with a `//!` line",
        check_module_docs(workspace()),
    );
}

#[test]
fn every_cited_path_exists() {
    assert_none(
        "every path cited in the README, docs/ and comments exists",
        check_cited_paths(workspace()),
    );
}

#[test]
fn the_docs_narrate_no_history() {
    assert_none(
        "the README, docs/ and comments narrate no development history",
        check_no_history(workspace()),
    );
}

#[test]
fn the_architecture_names_only_what_exists() {
    assert_none(
        "docs/ARCHITECTURE.md names only files and folders that exist",
        check_architecture(workspace()),
    );
}

/// The checks on planted trees: each rule fails on a violation and passes without one.
mod planted {
    use super::*;

    /// A small tree: one crate with a source, a test and a fixture, a document, a README.
    fn tree(extra: &[(&str, &str)]) -> Workspace {
        let mut files = vec![
            ("Cargo.toml", ""),
            ("crates/a/Cargo.toml", ""),
            ("crates/a/src/lib.rs", "//! A crate.\n"),
            ("crates/a/src/wal/writer.rs", "//! The writer.\n"),
            ("crates/a/tests/fixtures/v1.sst", ""),
            ("docs/format.md", "# Format\n"),
            ("README.md", "# a\n"),
        ];
        files.extend_from_slice(extra);
        Workspace::from_files(&files)
    }

    fn lines(found: &[Violation]) -> Vec<(String, usize)> {
        found.iter().map(|v| (v.path.clone(), v.line)).collect()
    }

    #[test]
    fn a_source_without_a_module_doc_is_named_with_its_line() {
        let ws = tree(&[
            ("crates/a/src/bad.rs", "\n\nuse std::fmt;\n"),
            ("crates/a/tests/attr.rs", "#![no_main]\n//! Too late.\n"),
            ("crates/a/tests/empty.rs", "\n"),
            ("xtask/src/good.rs", "\n//! Fine after a blank line.\n"),
            ("fuzz/fuzz_targets/t.rs", "//! A target.\n\n#![no_main]\n"),
            ("elsewhere/free.rs", "fn main() {}\n"),
        ]);
        let found = check_module_docs(&ws);
        assert_eq!(
            lines(&found),
            [
                ("crates/a/src/bad.rs".to_string(), 3),
                ("crates/a/tests/attr.rs".to_string(), 1),
                ("crates/a/tests/empty.rs".to_string(), 1),
            ]
        );
        assert!(found[0].message.contains("use std::fmt;"), "{}", found[0]);
    }

    #[test]
    fn a_comment_citing_a_missing_path_is_caught() {
        // Each line of a planted file is a string of its own, so that no line of this file
        // reads as a comment to the real check.
        let source = concat!(
            "//! Cites `docs/format.md` and `wal/writer.rs`.\n",
            "\n",
            "/// See `src/wal/writer.rs`, `tests/fixtures/v1.sst`, `crates/a/src/`\n",
            "/// and `docs/gone.md`; not `target/x.rs`, `/proc/self/io`, `a/*.rs`,\n",
            "/// `memtable/insert`, `../` or `Db::open`.\n",
            "fn f() {}\n",
            "let s = \"`docs/not-a-comment.md`\";\n",
            "// A span across lines: `crates/a/src/\n",
            "// nope.rs` is not a path.\n",
        );
        let ws = tree(&[("crates/a/src/cite.rs", source)]);
        let found = check_cited_paths(&ws);
        assert_eq!(lines(&found), [("crates/a/src/cite.rs".to_string(), 4)]);
        assert!(found[0].message.contains("`docs/gone.md`"), "{}", found[0]);
    }

    #[test]
    fn a_comment_resolves_against_its_own_crate_only() {
        let ws = tree(&[
            ("crates/b/Cargo.toml", ""),
            (
                "crates/b/src/lib.rs",
                "//! B, citing `src/wal/writer.rs`.\n",
            ),
        ]);
        assert_eq!(
            lines(&check_cited_paths(&ws)),
            [("crates/b/src/lib.rs".to_string(), 1)]
        );
    }

    #[test]
    fn a_document_citing_or_linking_a_missing_path_is_caught() {
        let doc = concat!(
            "# Doc\n",
            "Code: `crates/a/src/lib.rs`, `wal/writer.rs`, `crates/a/src/gone.rs`.\n",
            "See [format](format.md), [gone](gone.md#part) and [web](https://x.org/a.md).\n",
            "```text\n",
            "`docs/in-a-fence.md`\n",
            "```\n",
            "Never `../outside/STYLE.md`; `[x](gone.md)` is code.\n",
        );
        let ws = tree(&[("docs/doc.md", doc)]);
        let found = check_cited_paths(&ws);
        assert_eq!(
            lines(&found),
            [
                ("docs/doc.md".to_string(), 2),
                ("docs/doc.md".to_string(), 3),
                ("docs/doc.md".to_string(), 7),
            ]
        );
        assert!(found[1].message.contains("gone.md#part"), "{}", found[1]);
    }

    #[test]
    fn history_in_documents_and_comments_is_caught() {
        let doc = concat!(
            "# Doc\n",
            "Measured in Session 4.\n",
            "At `81349af` the figure was lower; also at e60796e.\n",
            "Not hashes: `deadbeef`, `1234567`, `0000042.log`, 0x243f6a8885a308d3.\n",
            "```text\n",
            "a1b2c3d4 in a fence\n",
            "```\n",
        );
        let source = concat!(
            "//! A module.\n",
            "// Since `a1b2c3d`, faster.\n",
            "fn f() {}\n"
        );
        let ws = tree(&[("docs/doc.md", doc), ("crates/a/src/h.rs", source)]);
        let found = check_no_history(&ws);
        assert_eq!(
            lines(&found),
            [
                ("crates/a/src/h.rs".to_string(), 2),
                ("docs/doc.md".to_string(), 2),
                ("docs/doc.md".to_string(), 3),
                ("docs/doc.md".to_string(), 3),
            ]
        );
        assert!(found[2].message.contains("81349af"), "{}", found[2]);
        assert!(found[3].message.contains("e60796e"), "{}", found[3]);
    }

    #[test]
    fn the_architecture_must_name_existing_files_under_its_headings() {
        let doc = concat!(
            "# Architecture\n",
            "Entry: `crates/a/src/lib.rs`, `writer.rs`, `format.md`.\n",
            "### `crates/a`\n",
            "`lib.rs`, `wal/`, `wal/writer.rs`, `fixtures/` and `reader.rs`.\n",
            "### `xtask/`\n",
            "`lib.rs` is not in xtask; `prefix_tree` and `Db::open` are no files.\n",
        );
        let ws = tree(&[
            ("docs/ARCHITECTURE.md", doc),
            ("xtask/src/main.rs", "//! X.\n"),
        ]);
        let found = check_architecture(&ws);
        assert_eq!(
            lines(&found),
            [
                ("docs/ARCHITECTURE.md".to_string(), 4),
                ("docs/ARCHITECTURE.md".to_string(), 6),
            ]
        );
        assert!(found[0].message.contains("`reader.rs`"), "{}", found[0]);
        assert!(found[1].message.contains("in xtask"), "{}", found[1]);
        let missing = tree(&[]);
        assert_eq!(
            lines(&check_architecture(&missing)),
            [("docs/ARCHITECTURE.md".to_string(), 1)]
        );
    }

    #[test]
    fn code_spans_pair_runs_of_equal_length() {
        let text = Text::new([(1, "a `x` b ``y ` z`` c `open"), (2, "close` d")]);
        let spans: Vec<_> = text.code_spans();
        assert_eq!(spans, [(1, "x"), (1, "y ` z"), (1, "open\nclose")]);
        assert!(!is_repo_path("open\nclose"));
    }

    #[test]
    fn relative_paths_resolve_and_never_leave_the_root() {
        assert_eq!(
            join("docs", "bench/x.json").as_deref(),
            Some("docs/bench/x.json")
        );
        assert_eq!(join("docs", "../README.md").as_deref(), Some("README.md"));
        assert_eq!(join("", "../outside/x.md"), None);
        assert!(is_repo_path("../outside"));
        assert!(!is_repo_path("../"));
        assert!(is_repo_path("docs/"));
        assert!(!is_repo_path("docs"));
        assert!(!is_repo_path("target/bench/"));
    }
}
