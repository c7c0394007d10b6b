//! Findings about the links between the JSON's weight names and the npz's keys: a name with no
//! array (`missing-weight`, with the likely intended key when the npz uses another naming scheme),
//! one array used twice (`shared-weight`), and arrays nobody uses (`unused-array`).

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::layers::lookup;
use crate::model::{ArchEntry, Npz};
use std::collections::{HashMap, HashSet};

/// The line that writes the course's key names, for hints.
pub const SAVEZ_COURSE_KEYS: &str = "np.savez(\"fashion_mnist.npz\", **{f\"{l.name}_{i}\": w for l in model.layers for i, w in enumerate(l.get_weights())})";

pub fn check(view: &ModelView, npz: &Npz) -> Vec<Finding> {
    let mut out = Vec::new();
    let parsed = ParsedKeys::new(npz);
    let ctx = SuggestCtx::new(view, npz);
    let mut used: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut suggested: HashSet<String> = HashSet::new();
    // The first missing-weight finding of each naming scheme carries the long explanation; later
    // ones refer back to it.
    let mut explained: HashMap<Scheme, String> = HashMap::new();
    let mut global = 0usize;
    for e in view.arch {
        for (j, key) in e.weights.iter().enumerate() {
            let here = Location::weight(view.json_file, e, j);
            if view.entry(key).is_none() && !crate::layers::takes_weights(&e.class_name) {
                // Nobody reads it: the course template and fmtool skip the weights of a layer
                // that has none, so the model still runs.
                out.push(
                    Finding::warning(
                        Code::MissingWeight,
                        here,
                        format!(
                            "{key} is not in {}; layer {} ({}) has no weights, so the grader never reads it",
                            view.npz_name(),
                            e.name,
                            e.class_name
                        ),
                    )
                    .hint(format!("remove it from $[{}].weights (a {} layer lists no weights)", e.index, e.class_name)),
                );
            } else if view.entry(key).is_none() {
                let s = suggest(view, &ctx, &parsed, e, j, global);
                let hint = match &s {
                    Some((k, scheme)) => {
                        suggested.insert(k.clone());
                        let pointer = here.pointer.clone().unwrap_or_default();
                        match explained.get(scheme) {
                            Some(first) => format!("did you mean {k:?}? (same naming scheme as {first})"),
                            None => {
                                explained.insert(*scheme, pointer);
                                format!("did you mean {k:?}? {}", scheme.explain(k, key))
                            }
                        }
                    }
                    None => format!("{} holds {}", view.npz_name(), summarize(npz)),
                };
                let role = lookup(&e.class_name)
                    .and_then(|s| s.weights.get(j).copied())
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" ({r} of layer {})", e.name))
                    .unwrap_or_else(|| format!(" (layer {})", e.name));
                out.push(
                    Finding::error(Code::MissingWeight, here, format!("{key}{role} is not in {}", view.npz_name()))
                        .hint(hint),
                );
            } else if let Some(&(i0, j0)) = used.get(key.as_str()) {
                let first = &view.arch.iter().find(|x| x.index == i0).map(|x| x.name.clone()).unwrap_or_default();
                out.push(
                    Finding::error(
                        Code::SharedWeight,
                        here,
                        format!("{key} is also $[{i0}].weights[{j0}] (layer {first}); one array cannot be two weights"),
                    )
                    .hint(format!("each layer's weights need their own keys (<layer name>_<i>): {SAVEZ_COURSE_KEYS}")),
                );
            } else {
                used.insert(key, (e.index, j));
            }
            global += 1;
        }
    }
    if view.arch_complete {
        for entry in &npz.entries {
            // Broken members get their own finding from `arrays`.
            if used.contains_key(entry.key.as_str()) || suggested.contains(&entry.key) || entry.array.is_err() {
                continue;
            }
            let shape = match &entry.array {
                Ok(a) => format!(" {}", crate::layers::fmt_dims(&a.shape)),
                Err(_) => String::new(),
            };
            let lower = entry.key.to_ascii_lowercase();
            let hint = if lower.contains("optimizer") || lower.contains("iteration") || lower.contains("momentum") {
                "optimizer state is not needed for inference; export only layer.get_weights()".to_string()
            } else {
                "the grader ignores it; if it belongs to a layer, add its key to that layer's \"weights\" list"
                    .to_string()
            };
            out.push(
                Finding::warning(
                    Code::UnusedArray,
                    Location::npz_key(view.npz_file, &entry.key),
                    format!("array {}{shape} is not used by any layer", entry.key),
                )
                .hint(hint),
            );
        }
    }
    out
}

/// How the npz names its arrays, when it is not the course's `<layer>_<i>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    /// Keras variable names: `dense_1/kernel:0`, `sequential/dense_1/kernel`, `dense_1_kernel`.
    Variable,
    /// `np.savez(path, *weights)`: `arr_0`, `arr_1`, ...
    Positional,
    /// Indexed by layer position: `layer_3_0`, `3_0`.
    LayerIndex,
    /// The same names with other numbers: the JSON and the npz come from different Keras sessions.
    Renumbered,
    /// A near spelling.
    Near,
}

impl Scheme {
    fn explain(self, found: &str, wanted: &str) -> String {
        match self {
            Scheme::Variable => format!(
                "The npz names arrays by Keras variable ({found}) while the JSON uses the course's <layer>_<i> ({wanted}). Save with {SAVEZ_COURSE_KEYS}, or run `fmtool convert`"
            ),
            Scheme::Positional => format!(
                "np.savez(path, *weights) names arrays arr_0, arr_1, ... in get_weights() order, which the JSON does not use. Save with keyword names: {SAVEZ_COURSE_KEYS}"
            ),
            Scheme::LayerIndex => format!(
                "The npz numbers arrays by layer position ({found}); the JSON expects <layer name>_<i> ({wanted}). Save with {SAVEZ_COURSE_KEYS}"
            ),
            Scheme::Renumbered => "Keras numbers layer names per session (dense, dense_1, ...): the JSON and the npz were probably exported from different models. Export both again from the same model, or run `fmtool convert` on the saved .h5".to_string(),
            Scheme::Near => {
                "A key with a similar name exists; make the JSON's \"weights\" and the npz keys agree".into()
            }
        }
    }
}

/// The npz keys split into (owner layer, variable role) where they look like Keras variable names.
struct ParsedKeys<'a> {
    by_owner: HashMap<String, Vec<(&'a str, String)>>,
    all_positional: bool,
}

/// Every variable role the registry knows (`kernel`, `moving_mean`, ...), longest first.
fn roles() -> Vec<&'static str> {
    let mut r: Vec<&str> = crate::layers::registry().iter().flat_map(|s| s.weights.iter().copied()).collect();
    r.sort_by_key(|r| std::cmp::Reverse(r.len()));
    r.dedup();
    r
}

impl<'a> ParsedKeys<'a> {
    fn new(npz: &'a Npz) -> ParsedKeys<'a> {
        let roles = roles();
        let mut by_owner: HashMap<String, Vec<(&str, String)>> = HashMap::new();
        for key in npz.keys() {
            let stripped = strip_var_suffix(key);
            let split = if let Some((head, role)) = stripped.rsplit_once('/') {
                let owner = head.rsplit('/').next().unwrap_or(head);
                Some((owner.to_string(), role.to_string()))
            } else {
                roles.iter().find_map(|r| {
                    stripped
                        .strip_suffix(r)
                        .and_then(|h| h.strip_suffix('_').or_else(|| h.strip_suffix('.')))
                        .map(|owner| (owner.to_string(), r.to_string()))
                })
            };
            if let Some((owner, role)) = split {
                by_owner.entry(owner).or_default().push((key, role));
            }
        }
        let all_positional = !npz.entries.is_empty()
            && npz.keys().all(|k| k.strip_prefix("arr_").is_some_and(|n| n.parse::<usize>().is_ok()));
        ParsedKeys { by_owner, all_positional }
    }
}

/// `kernel:0` → `kernel`.
fn strip_var_suffix(key: &str) -> &str {
    match key.rsplit_once(':') {
        Some((head, n)) if n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => key,
    }
}

/// What the key suggestions need, computed once per model: the lookups below run for every
/// missing weight, and rebuilding them each time made `check` cubic in the number of layers.
struct SuggestCtx<'a> {
    /// Keys some entry's "weights" lists.
    referenced: HashSet<&'a str>,
    /// npz keys no entry lists, in archive order.
    unreferenced: Vec<&'a str>,
    /// Per base name (`dense` for `dense_4`): the layers of that base whose first weight is
    /// missing, in order, and the distinct owners of that base among the unreferenced keys.
    missing_by_base: HashMap<String, Vec<&'a str>>,
    owners_by_base: HashMap<String, Vec<&'a str>>,
    /// Entries with weights before each entry index.
    weighted_before: HashMap<usize, usize>,
    /// Edit-distance cells left for near-spelling suggestions: past it, a model with thousands
    /// of unrelated keys gets no "did you mean" instead of a quadratic wait.
    budget: std::cell::Cell<usize>,
}

/// The layer name without a trailing `_<number>`.
fn base(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    }
}

impl<'a> SuggestCtx<'a> {
    fn new(view: &ModelView<'a>, npz: &'a Npz) -> SuggestCtx<'a> {
        let referenced: HashSet<&str> = view.arch.iter().flat_map(|x| x.weights.iter().map(String::as_str)).collect();
        let unreferenced: Vec<&str> = npz.keys().filter(|k| !referenced.contains(k)).collect();
        let mut missing_by_base: HashMap<String, Vec<&str>> = HashMap::new();
        for x in view.arch {
            if x.weights.first().is_some_and(|w| view.entry(w).is_none()) {
                missing_by_base.entry(base(&x.name).to_string()).or_default().push(x.name.as_str());
            }
        }
        let mut owners_by_base: HashMap<String, Vec<&str>> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for k in &unreferenced {
            if let Some((owner, n)) = k.rsplit_once('_')
                && n.bytes().all(|c| c.is_ascii_digit())
                && missing_by_base.contains_key(base(owner))
                && seen.insert(owner)
            {
                owners_by_base.entry(base(owner).to_string()).or_default().push(owner);
            }
        }
        let mut weighted_before = HashMap::new();
        let mut count = 0;
        let mut sorted: Vec<&ArchEntry> = view.arch.iter().collect();
        sorted.sort_by_key(|x| x.index);
        for x in sorted {
            weighted_before.entry(x.index).or_insert(count);
            if !x.weights.is_empty() {
                count += 1;
            }
        }
        SuggestCtx {
            referenced,
            unreferenced,
            missing_by_base,
            owners_by_base,
            weighted_before,
            budget: std::cell::Cell::new(20_000_000),
        }
    }
}

/// The npz key most likely meant by weight `j` of entry `e` (the `global`-th weight of the model).
fn suggest(
    view: &ModelView,
    ctx: &SuggestCtx,
    parsed: &ParsedKeys,
    e: &ArchEntry,
    j: usize,
    global: usize,
) -> Option<(String, Scheme)> {
    if let Some(cands) = parsed.by_owner.get(&e.name) {
        let order: Vec<&str> = lookup(&e.class_name).map(|s| s.weights.to_vec()).unwrap_or_default();
        let mut c = cands.clone();
        // Stable sort by the role's position in get_weights(); unknown roles keep archive order.
        c.sort_by_key(|(_, role)| order.iter().position(|r| r == role).unwrap_or(order.len()));
        if let Some((k, _)) = c.get(j) {
            return Some((k.to_string(), Scheme::Variable));
        }
    }
    if parsed.all_positional {
        let k = format!("arr_{global}");
        if view.entry(&k).is_some() {
            return Some((k, Scheme::Positional));
        }
    }
    let weighted_index = ctx.weighted_before.get(&e.index).copied().unwrap_or(0);
    for i in [e.index, weighted_index] {
        for k in [format!("layer_{i}_{j}"), format!("layer{i}_{j}"), format!("{i}_{j}"), format!("l{i}_{j}")] {
            if view.entry(&k).is_some() && !ctx.referenced.contains(k.as_str()) {
                return Some((k, Scheme::LayerIndex));
            }
        }
    }
    let wanted = &e.weights[j];
    // Same layer names with other numbers (`dense_4_0` for `dense_0`): match the k-th layer of a
    // base name whose weights are missing with the k-th unused owner of that base name in the npz.
    let b = base(&e.name);
    let missing_same = ctx.missing_by_base.get(b).map(Vec::as_slice).unwrap_or(&[]);
    let owners_same = ctx.owners_by_base.get(b).map(Vec::as_slice).unwrap_or(&[]);
    if missing_same.len() == owners_same.len()
        && let Some(r) = missing_same.iter().position(|n| *n == e.name)
    {
        let k = format!("{}_{j}", owners_same[r]);
        if view.entry(&k).is_some() {
            return Some((k, Scheme::Renumbered));
        }
    }
    let limit = (wanted.chars().count() / 4).max(2);
    let wanted_len = wanted.chars().count();
    let mut best: Option<(usize, &str)> = None;
    for k in &ctx.unreferenced {
        // Keys whose lengths differ by more than the limit cannot be near spellings.
        let len = k.chars().count();
        if len.abs_diff(wanted_len) > limit {
            continue;
        }
        let cells = (len + 1) * (wanted_len + 1);
        if cells > ctx.budget.get() {
            break;
        }
        ctx.budget.set(ctx.budget.get() - cells);
        let d = levenshtein(k, wanted);
        if best.is_none_or(|(bd, bk)| (d, *k) < (bd, bk)) {
            best = Some((d, k));
        }
    }
    let best = best?;
    if best.0 <= limit {
        return Some((best.1.to_string(), Scheme::Near));
    }
    None
}

fn summarize(npz: &Npz) -> String {
    // Keys are the student's text: each is clipped and escaped.
    let keys: Vec<String> = npz.keys().take(9).map(|k| crate::text::clip(k, 60)).collect();
    match npz.entries.len() {
        0 => "no arrays".into(),
        n if n <= 8 => format!("{n} arrays: {}", keys.join(", ")),
        n => format!("{n} arrays: {}, ...", keys[..8].join(", ")),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::grader::Grader;
    use serde_json::json;

    fn mlp_arch() -> Vec<ArchEntry> {
        arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            dense("dense", 128, "relu"),
            dense("dense_1", 10, "softmax"),
        ]))
    }

    #[test]
    fn missing_weight_names_key_pointer_and_npz() {
        let a = mlp_arch();
        let n = npz(&[("dense_0", &[784, 128]), ("dense_1", &[128]), ("dense_1_0", &[128, 10])]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["missing-weight"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[2].weights[1]"));
        assert_eq!(f[0].location.layer.as_deref(), Some("dense_1"));
        assert_eq!(f[0].message, "dense_1_1 (bias of layer dense_1) is not in fashion_mnist.npz");
        assert!(f[0].hint.as_deref().unwrap().contains("dense_1_0"), "{:?}", f[0].hint);
    }

    #[test]
    fn keras_variable_names_are_mapped() {
        let a = mlp_arch();
        // Archive order deliberately puts bias first: the role decides, not the order.
        let n = npz(&[
            ("dense/bias:0", &[128]),
            ("dense/kernel:0", &[784, 128]),
            ("dense_1/kernel:0", &[128, 10]),
            ("dense_1/bias:0", &[10]),
        ]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["missing-weight"; 4], "unused arrays that were suggested are not reported");
        let hints: Vec<&str> = f.iter().map(|f| f.hint.as_deref().unwrap()).collect();
        assert!(hints[0].starts_with("did you mean \"dense/kernel:0\"? The npz names arrays by Keras variable"));
        assert!(hints[0].contains("np.savez"));
        assert_eq!(hints[1], "did you mean \"dense/bias:0\"? (same naming scheme as $[1].weights[0])");
        assert!(hints[3].contains("dense_1/bias:0"));
    }

    #[test]
    fn underscore_variable_names_and_keras3_paths() {
        let a = mlp_arch();
        let n = npz(&[
            ("sequential/dense/kernel", &[784, 128]),
            ("sequential/dense/bias", &[128]),
            ("dense_1_kernel", &[128, 10]),
            ("dense_1_bias", &[10]),
        ]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        let hints: Vec<&str> = f.iter().map(|f| f.hint.as_deref().unwrap()).collect();
        assert!(hints[0].contains("\"sequential/dense/kernel\""));
        assert!(hints[2].contains("\"dense_1_kernel\""));
        assert!(hints[3].contains("\"dense_1_bias\""));
    }

    #[test]
    fn positional_arr_names_are_mapped() {
        let a = mlp_arch();
        let n = npz(&[("arr_0", &[784, 128]), ("arr_1", &[128]), ("arr_2", &[128, 10]), ("arr_3", &[10])]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(f.len(), 4);
        assert!(f[2].hint.as_deref().unwrap().starts_with("did you mean \"arr_2\""));
        assert!(f[0].hint.as_deref().unwrap().contains("arr_0, arr_1"));
    }

    #[test]
    fn renumbered_session_names() {
        let a = mlp_arch();
        let n =
            npz(&[("dense_4_0", &[784, 128]), ("dense_4_1", &[128]), ("dense_5_0", &[128, 10]), ("dense_5_1", &[10])]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert!(f[0].hint.as_deref().unwrap().contains("different models"), "{:?}", f[0].hint);
    }

    #[test]
    fn shared_and_unused() {
        let a = arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            {"name": "dense", "type": "Dense", "config": {"units": 10}, "weights": ["w", "b"]},
            {"name": "dense_1", "type": "Dense", "config": {"units": 10}, "weights": ["w", "b2"]},
        ]));
        let n = npz(&[("w", &[784, 10]), ("b", &[10]), ("b2", &[10]), ("optimizer/iterations", &[]), ("extra", &[3])]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["shared-weight", "unused-array", "unused-array"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[2].weights[0]"));
        assert!(f[0].message.contains("$[1].weights[0] (layer dense)"), "{}", f[0].message);
        assert_eq!(f[1].severity, super::super::Severity::Warning);
        assert_eq!(f[1].location.key.as_deref(), Some("optimizer/iterations"));
        assert!(f[1].hint.as_deref().unwrap().contains("optimizer"));
        assert_eq!(f[2].message, "array extra (3,) is not used by any layer");
    }

    #[test]
    fn no_suggestion_lists_the_keys() {
        let a = mlp_arch();
        let n = npz(&[("x", &[1]), ("y", &[1])]);
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert!(f[0].hint.as_deref().unwrap().contains("2 arrays: x, y"), "{:?}", f[0].hint);
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "ab"), 2);
        assert_eq!(levenshtein("dense_0", "dense_0"), 0);
    }
}
