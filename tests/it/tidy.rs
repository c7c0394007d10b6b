//! Tidy tests, in the manner of rust-analyzer's: the layering ARCHITECTURE.md describes, checked
//! on the source text so that it stays true. Each rule names the file and line that breaks it.
//!
//! - commands compute and `report/` prints: nothing but `main.rs`, `lib.rs` and `report/` writes
//!   to stdout or stderr, and no command uses `report`;
//! - `cli` (the command-line types) is read by `lib.rs`, `main.rs` and `commands/` only;
//! - files are touched by the modules that own that job only (`fsguard` reads, `atomic` writes,
//!   `student/sandbox` copies a repository, `venv` makes the cached Python environments,
//!   `commands/` decide which paths), never by the engine, the checks or the reports;
//! - the allocator policy (`mallopt`) is set in `main.rs` and nowhere else;
//! - no module depends on itself through others: the top-level modules form no cycle, nor do the
//!   files inside one module.
//!
//! Test code (`#[cfg(test)] mod tests` at the end of a file) and comments are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One source file: its module path (`layers::conv`; `lib` and `main` for the roots), and its
/// non-test, non-comment lines with their 1-based numbers.
struct Source {
    module: String,
    file: String,
    lines: Vec<(usize, String)>,
}

fn sources() -> Vec<Source> {
    let src = super::common::root().join("src");
    let mut out = Vec::new();
    walk(&src, &src, &mut out);
    assert!(out.len() > 40, "the tidy test found only {} files under src/", out.len());
    out
}

fn walk(src: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(src, &p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.push(Source {
                module: parts.join("::"),
                file: format!("src/{}", p.strip_prefix(src).unwrap().display()),
                lines: code_lines(&text),
            });
        }
    }
}

/// The lines before the file's test module, without comments (whole-line `//` comments and
/// trailing ones outside string literals).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") && lines.get(i + 1).is_some_and(|n| n.contains("mod tests")) {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, strip_trailing_comment(line).to_string()));
    }
    out
}

fn strip_trailing_comment(line: &str) -> &str {
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '/' if !in_str && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    line
}

/// The modules a line refers to, as module paths: `crate::a::b::Item`, `crate::{a, b::c}`, and
/// `super::x` resolved against `module`.
fn references(module: &str, line: &str, modules: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let parent: Vec<&str> = {
        let mut p: Vec<&str> = module.split("::").collect();
        // A file's `super` is its parent module; `lib`/`main` have none.
        p.pop();
        p
    };
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let paths = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').map(|s| s.trim().to_string()).collect()
            } else {
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
                vec![rest[..end].to_string()]
            };
            for p in paths {
                let mut parts: Vec<&str> = base.clone();
                parts.extend(p.split("::").filter(|s| !s.is_empty() && *s != "self"));
                // The longest prefix that names a module; root items belong to lib.rs/error.rs.
                let found = (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m));
                match found {
                    Some(m) => out.push(m),
                    None => match parts.first() {
                        Some(&("Error" | "Result" | "err")) => out.push("error".into()),
                        Some(_) => out.push("lib".into()),
                        None => {}
                    },
                }
            }
        }
    }
    out
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

/// Every (from module, to module, file, line) reference between different modules.
fn edges(sources: &[Source]) -> Vec<(String, String, String, usize)> {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut out = Vec::new();
    for s in sources {
        for (n, line) in &s.lines {
            for to in references(&s.module, line, &modules) {
                if to != s.module {
                    out.push((s.module.clone(), to, s.file.clone(), *n));
                }
            }
        }
    }
    out
}

/// Lines of `sources` outside the allowed modules that contain one of `needles`.
fn offending(sources: &[Source], needles: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for s in sources.iter().filter(|s| !allowed(&s.module)) {
        for (n, line) in &s.lines {
            if let Some(needle) = needles.iter().find(|x| contains_word(line, x)) {
                out.push(format!("{}:{n}: `{needle}` in {}", s.file, line.trim()));
            }
        }
    }
    out
}

/// Whether `needle` occurs in `line` not preceded by a letter, digit or `_` (`File::` is not in
/// `Hdf5File::`).
fn contains_word(line: &str, needle: &str) -> bool {
    line.match_indices(needle).any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn assert_none(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule}:\n  {}", found.join("\n  "));
}

#[test]
fn only_main_lib_and_report_print() {
    let found = offending(
        &sources(),
        &["print!(", "println!(", "eprint!(", "eprintln!(", "dbg!(", "io::stdout(", "io::stderr("],
        |m| matches!(top(m), "main" | "lib" | "report"),
    );
    assert_none("commands compute and report/ prints: move the output to report/", found);
}

#[test]
fn commands_do_not_use_report_and_only_commands_use_cli() {
    let sources = sources();
    let mut found = Vec::new();
    for (from, to, file, line) in edges(&sources) {
        if top(&from) == "commands" && top(&to) == "report" {
            found.push(format!("{file}:{line}: {from} uses {to} (a command returns a value; lib.rs prints it)"));
        }
        if top(&to) == "cli" && !matches!(top(&from), "commands" | "lib" | "main") {
            found.push(format!("{file}:{line}: {from} uses {to} (command-line types stop at commands/)"));
        }
    }
    assert_none("layering", found);
}

#[test]
fn files_are_touched_only_where_that_is_the_job() {
    let found = offending(&sources(), &["std::fs", "fs::", "File::", "OpenOptions::new", "read_dir("], |m| {
        matches!(
            m,
            "fsguard"
                | "atomic"
                | "student::sandbox"
                | "student::beneath"
                | "student::bwrap"
                | "student::watchdog"
                | "venv"
        ) || top(m) == "commands"
    });
    assert_none(
        "file access outside fsguard (reads), atomic (writes), student's sandbox (the copy, its links, the system folders bound, /proc), venv (the cached Python environments) and commands/",
        found,
    );
}

#[test]
fn the_allocator_policy_is_set_in_main_only() {
    let found = offending(&sources(), &["mallopt"], |m| m == "main");
    assert_none("allocator policy outside main.rs", found);
}

/// The strongly connected components with more than one member (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.graph.get(v) {
            for w in next {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Explains a cycle by the references that make it.
fn explain(cycle: &[String], edges: &[(String, String, String, usize)], key: impl Fn(&str) -> String) -> String {
    let members: BTreeSet<&String> = cycle.iter().collect();
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    for (from, to, file, line) in edges {
        let (f, t) = (key(from), key(to));
        if f != t && members.contains(&f) && members.contains(&t) && seen.insert((f.clone(), t.clone())) {
            lines.push(format!("{f} -> {t} ({file}:{line})"));
        }
    }
    format!("{}: {}", cycle.join(" <-> "), lines.join("; "))
}

#[test]
fn no_module_depends_on_itself() {
    let sources = sources();
    let edges = edges(&sources);
    let mut found = Vec::new();
    // Top-level modules.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to, _, _) in &edges {
        if top(from) != top(to) && !matches!(top(from), "lib" | "main") {
            graph.entry(top(from).to_string()).or_default().insert(top(to).to_string());
        }
    }
    for c in cycles(&graph) {
        found.push(explain(&c, &edges, |m| top(m).to_string()));
    }
    // Files inside one module.
    let mut inner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to, _, _) in &edges {
        if top(from) == top(to) && from.contains("::") && to.contains("::") {
            inner.entry(from.clone()).or_default().insert(to.clone());
        }
    }
    for c in cycles(&inner) {
        found.push(explain(&c, &edges, |m| m.to_string()));
    }
    assert_none("dependency cycles (move the shared part into a module both use)", found);
}

#[test]
fn the_reference_scanner_reads_paths_groups_and_super() {
    let modules: BTreeSet<String> =
        ["layers", "layers::conv", "layers::winograd", "report", "error"].iter().map(|s| s.to_string()).collect();
    let r = |m: &str, l: &str| references(m, l, &modules);
    assert_eq!(r("layers::conv", "use super::winograd::{a, b};"), ["layers::winograd"]);
    assert_eq!(r("commands", "use crate::{report, err};"), ["report", "error"]);
    assert_eq!(r("x", "let p = crate::layers::conv::pad(x);"), ["layers::conv"]);
    assert_eq!(r("x", "crate::report::plot::write(a)"), ["report"]);
    assert_eq!(strip_trailing_comment(r#"let s = "a//b"; // crate::report"#), r#"let s = "a//b"; "#);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string(), "c".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
}
