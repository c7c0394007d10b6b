//! A bounded YAML reader for workflow files: the first document as a tree of scalars, sequences and
//! mappings with 1-based line numbers, built from saphyr-parser's events.
//!
//! Why not a YAML loader crate: the loaders (saphyr's, yaml-rust2's, serde_yaml's) copy an anchored
//! subtree at every alias, so a few hundred bytes of `&a [*b, *b, ...]` expand to gigabytes (the
//! "billion laughs"). Here an alias is a second reference to the same node (nothing is copied), and a
//! document whose expanded size would exceed [`MAX_EXPANDED_NODES`] is refused with an error, since
//! GitHub would not run such a workflow either.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// The most nodes a document may have once every alias is expanded.
pub const MAX_EXPANDED_NODES: u64 = 100_000;
/// The deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 200;

/// One node; children are indices into [`Doc::nodes`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar { value: String, plain: bool, line: usize },
    Seq { items: Vec<usize>, line: usize },
    Map { entries: Vec<(usize, usize)>, line: usize },
}

/// The first document of a YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub nodes: Vec<Node>,
    pub root: Option<usize>,
}

impl Doc {
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// The 1-based line where node `i` starts.
    pub fn line(&self, i: usize) -> usize {
        match &self.nodes[i] {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }

    /// The value of `key` in mapping `map` (the first entry with that scalar key), if `map` is a mapping.
    pub fn get(&self, map: usize, key: &str) -> Option<usize> {
        match &self.nodes[map] {
            Node::Map { entries, .. } => entries.iter().find(|(k, _)| self.str(*k) == Some(key)).map(|(_, v)| *v),
            _ => None,
        }
    }

    /// The text of a scalar node.
    pub fn str(&self, i: usize) -> Option<&str> {
        match &self.nodes[i] {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A plain scalar that YAML reads as null (`~`, `null`, or nothing).
    pub fn is_null(&self, i: usize) -> bool {
        matches!(&self.nodes[i], Node::Scalar { value, plain: true, .. } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn kind(&self, i: usize) -> &'static str {
        match &self.nodes[i] {
            Node::Scalar { .. } => "a string",
            Node::Seq { .. } => "a list",
            Node::Map { .. } => "a mapping",
        }
    }
}

/// A collection being built: its node index and its children so far.
struct Open {
    index: usize,
    anchor: usize,
    children: Vec<usize>,
    is_map: bool,
}

/// Parses the first document of `text`. Errors are worded for a person and carry the line.
pub fn parse(text: &str) -> Result<Doc, String> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let mut in_doc = false;
    let mut parser = Parser::new_from_str(text);

    // A finished node goes into its parent, or becomes the root.
    fn attach(stack: &mut [Open], root: &mut Option<usize>, i: usize) {
        match stack.last_mut() {
            Some(open) => open.children.push(i),
            None => *root = Some(i),
        }
    }

    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| format!("not valid YAML: {e}"))?;
        let line = span.start.line();
        match ev {
            Event::DocumentStart(_) => {
                if root.is_some() {
                    // Only the first document counts; GitHub reads one.
                    break;
                }
                in_doc = true;
            }
            Event::DocumentEnd => {
                if in_doc {
                    break;
                }
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let i = nodes.len();
                nodes.push(Node::Scalar { value: value.into_owned(), plain: style == ScalarStyle::Plain, line });
                sizes.push(1);
                if anchor > 0 {
                    anchors.insert(anchor, i);
                }
                attach(&mut stack, &mut root, i);
            }
            Event::Alias(id) => {
                let Some(&i) = anchors.get(&id) else {
                    return Err(format!("line {line}: an alias (*name) to an anchor that is not defined before it"));
                };
                attach(&mut stack, &mut root, i);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("line {line}: nested more than {MAX_DEPTH} levels deep"));
                }
                let is_map = matches!(ev, Event::MappingStart(..));
                let index = nodes.len();
                nodes.push(if is_map {
                    Node::Map { entries: Vec::new(), line }
                } else {
                    Node::Seq { items: Vec::new(), line }
                });
                sizes.push(1);
                stack.push(Open { index, anchor, children: Vec::new(), is_map });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = stack.pop() else {
                    return Err(format!("line {line}: the end of a list or mapping that was not started"));
                };
                let size = open.children.iter().fold(1u64, |acc, c| acc.saturating_add(sizes[*c]));
                if size > MAX_EXPANDED_NODES {
                    return Err(format!(
                        "line {}: its aliases (*name) expand to more than {MAX_EXPANDED_NODES} values (a YAML alias bomb); fmtool refuses it",
                        open_line(&nodes, open.index)
                    ));
                }
                sizes[open.index] = size;
                nodes[open.index] = if open.is_map {
                    let mut entries = Vec::with_capacity(open.children.len() / 2);
                    let mut it = open.children.chunks_exact(2);
                    for pair in &mut it {
                        entries.push((pair[0], pair[1]));
                    }
                    Node::Map { entries, line: open_line(&nodes, open.index) }
                } else {
                    Node::Seq { items: open.children, line: open_line(&nodes, open.index) }
                };
                if open.anchor > 0 {
                    anchors.insert(open.anchor, open.index);
                }
                attach(&mut stack, &mut root, open.index);
            }
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => {}
        }
    }
    Ok(Doc { nodes, root })
}

fn open_line(nodes: &[Node], i: usize) -> usize {
    match &nodes[i] {
        Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_sequences_and_lines() {
        let d = parse("a: 1\nb:\n  - x\n  - name: y\n    with: {k: v}\n").unwrap();
        let root = d.root.unwrap();
        assert_eq!(d.str(d.get(root, "a").unwrap()), Some("1"));
        let b = d.get(root, "b").unwrap();
        let Node::Seq { items, .. } = d.node(b) else { panic!("b is a list") };
        assert_eq!(d.line(items[0]), 3);
        assert_eq!(d.line(items[1]), 4);
        let with = d.get(items[1], "with").unwrap();
        assert_eq!(d.str(d.get(with, "k").unwrap()), Some("v"));
    }

    #[test]
    fn aliases_share_the_node() {
        let d = parse("a: &x {k: v}\nb: *x\n").unwrap();
        let root = d.root.unwrap();
        assert_eq!(d.get(root, "a"), d.get(root, "b"));
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut s = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            s.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
        }
        let t = std::time::Instant::now();
        let e = parse(&s).unwrap_err();
        assert!(e.contains("alias bomb"), "{e}");
        assert!(t.elapsed().as_secs_f64() < 1.0);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "[".repeat(5000) + &"]".repeat(5000);
        // saphyr-parser stops at its own recursion limit (byte 255) before ours is reached.
        let e = parse(&s).unwrap_err();
        assert!(e.contains("nested") || e.contains("recursion limit"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a: [1, 2\nb: }\n").unwrap_err();
        assert!(e.starts_with("not valid YAML"), "{e}");
        assert!(e.contains("line"), "{e}");
    }
}
