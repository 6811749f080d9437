//! The crate's module graph has no cycles: no module uses another that uses it back, directly or
//! through others. Read from the source: every `crate::…` and `super::…` path in a module's
//! non-test code is an edge to the longest module that path names. Doc comments and test
//! modules do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`exchange::jwt`) → its code without comments and test modules.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut name = relative.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_owned();
            }
            if name == "lib" || name == "main" || name.ends_with("tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            out.insert(name, code_of(&text));
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&src, &src, &mut out);
    out
}

/// The lines that are code: comments dropped, and everything from a `#[cfg(test)]` module on.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut code = String::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The modules `module`'s code names through `crate::` and `super::` paths.
fn uses(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut out = BTreeSet::new();
    // A module names its own children without a prefix: `authorize::authorize(…)`.
    let children = known.iter().filter_map(|k| {
        k.strip_prefix(module)
            .and_then(|rest| rest.strip_prefix("::"))
            .filter(|rest| !rest.contains("::"))
            .map(|child| (k, child))
    });
    for (full, child) in children {
        let named = code.match_indices(&format!("{child}::")).any(|(at, _)| {
            code[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
        });
        if named {
            out.insert(full.clone());
        }
    }
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<&str> = code[at + prefix.len()..]
                .split("::")
                .map_while(|segment| {
                    let ident: String = segment
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    (ident.len() == segment.len() && !ident.is_empty())
                        .then_some(segment)
                        .or_else(|| (!ident.is_empty()).then(|| &segment[..ident.len()]))
                })
                .collect();
            let mut target = None;
            for n in 0..=path.len() {
                let mut candidate: Vec<&str> = Vec::new();
                if !base.is_empty() {
                    candidate.push(base);
                }
                candidate.extend(&path[..n]);
                let name = candidate.join("::");
                if known.contains(&name) {
                    target = Some(name);
                }
            }
            if let Some(t) = target
                && t != module
            {
                out.insert(t);
            }
        }
    }
    out
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, done, stack) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, code)| (name.clone(), uses(name, code, &known)))
        .collect()
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let graph = graph();
    assert!(graph.len() > 20, "the source was read: {:?}", graph.keys());
    assert!(
        graph["exchange::authorize"].contains("exchange::jwt"),
        "edges are found"
    );
    if let Some(found) = cycle(&graph) {
        panic!("module cycle: {}", found.join(" → "));
    }
}

#[test]
fn the_exchange_path_knows_nothing_above_it() {
    let graph = graph();
    for (module, used) in &graph {
        if module == "exchange" || module.starts_with("exchange::") {
            for target in used {
                assert!(
                    target.starts_with("exchange")
                        || ["signing", "time", "telemetry", "report"].contains(&target.as_str()),
                    "{module} uses {target}"
                );
            }
        }
    }
}

#[test]
fn metric_names_and_error_reports_are_leaves() {
    let graph = graph();
    for leaf in ["telemetry", "report", "time", "exchange::refusal"] {
        assert!(graph[leaf].is_empty(), "{leaf} uses {:?}", graph[leaf]);
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let known: BTreeSet<String> = ["a", "a::b", "c"].map(String::from).into();
    let edges = |m: &str, code: &str| uses(m, code, &known);
    assert_eq!(edges("a::b", "use super::X;"), ["a".to_owned()].into());
    assert_eq!(
        edges("a", "use crate::a::b::Y;"),
        ["a::b".to_owned()].into()
    );
    assert_eq!(edges("c", "crate::c::z();"), BTreeSet::new());
    assert_eq!(edges("a", "b::f();"), ["a::b".to_owned()].into());
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), edges("a", "use crate::a::b::Y;"));
    graph.insert("a::b".to_owned(), edges("a::b", "use super::X;"));
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".to_owned(), "a::b".to_owned(), "a".to_owned()])
    );
    graph.insert("a::b".to_owned(), BTreeSet::new());
    assert_eq!(cycle(&graph), None);
}
