//! A static reading of the repo's `model_test.py`: its top-level test functions and the accuracy
//! threshold each asserts. Line-based and forgiving (the file is student-edited Python); what it
//! finds feeds findings only, never points.

/// How a test compares the accuracy with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `acc >= t`
    Ge,
    /// `acc > t`
    Gt,
}

impl Cmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// `assert acc >= 0.9`: the threshold a test asserts.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub cmp: Cmp,
    pub value: f64,
    /// 1-based line of the assert.
    pub line: usize,
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "acc {} {}", self.cmp.as_str(), self.value)
    }
}

/// One top-level `def test_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestFunction {
    pub name: String,
    /// 1-based line of the `def`.
    pub line: usize,
    /// The accuracy threshold its body (or a top-level helper it calls) asserts.
    pub threshold: Option<Threshold>,
}

/// What fmtool reads from `model_test.py`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelTest {
    pub tests: Vec<TestFunction>,
}

impl ModelTest {
    pub fn test(&self, name: &str) -> Option<&TestFunction> {
        // A parametrised node id (`test_x[1]`) names the function `test_x`.
        let base = name.split('[').next().unwrap_or(name);
        self.tests.iter().find(|t| t.name == base)
    }

    /// The test asserting exactly `acc >= value` (or `>` when `cmp` says so), if there is one.
    pub fn test_with_threshold(&self, cmp: Cmp, value: f64) -> Option<&TestFunction> {
        self.tests
            .iter()
            .find(|t| t.threshold.as_ref().is_some_and(|th| th.cmp == cmp && (th.value - value).abs() < 1e-9))
    }
}

/// A top-level function: name, `def` line, and its body lines (1-based line, text).
struct Def<'a> {
    name: &'a str,
    line: usize,
    body: Vec<(usize, &'a str)>,
}

/// The top-level `def`s of a Python file, skipping lines inside triple-quoted strings.
fn top_level_defs(text: &str) -> Vec<Def<'_>> {
    let mut defs: Vec<Def> = Vec::new();
    let mut docstrings = super::pysrc::Docstrings::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if docstrings.inside(raw) {
            if let Some(d) = defs.last_mut() {
                d.body.push((line_no, ""));
            }
            continue;
        }
        let trimmed = raw.trim_start();
        let at_top = raw.len() == trimmed.len();
        if at_top && !trimmed.is_empty() && !trimmed.starts_with('#') {
            let rest = trimmed.strip_prefix("async ").unwrap_or(trimmed);
            if let Some(rest) = rest.strip_prefix("def ") {
                let name = rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
                defs.push(Def { name, line: line_no, body: Vec::new() });
                continue;
            }
            if trimmed.starts_with('@') {
                continue;
            }
            // Any other top-level statement ends the function before it.
            defs.push(Def { name: "", line: line_no, body: Vec::new() });
            continue;
        }
        if let Some(d) = defs.last_mut() {
            d.body.push((line_no, raw));
        }
    }
    defs.retain(|d| !d.name.is_empty());
    defs
}

/// `assert acc >= 0.9`, `assert acc > .8`, `assert 0.9 <= acc` on one line (comments stripped).
fn threshold_in(line: &str, line_no: usize) -> Option<Threshold> {
    let code = line.split('#').next().unwrap_or("").trim();
    let expr = code.strip_prefix("assert")?;
    if !expr.starts_with([' ', '(']) {
        return None;
    }
    let expr = expr.split(',').next().unwrap_or("").trim().trim_start_matches('(').trim_end_matches(')').trim();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let number = |s: &str| -> Option<f64> {
        let s = s.trim();
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        s.parse().ok()
    };
    for (op, cmp, flipped) in
        [(">=", Cmp::Ge, false), ("<=", Cmp::Ge, true), (">", Cmp::Gt, false), ("<", Cmp::Gt, true)]
    {
        if let Some((l, r)) = expr.split_once(op) {
            if r.starts_with('=') {
                continue;
            }
            let (var, num) = if flipped { (r.trim(), l) } else { (l.trim(), r) };
            if ident(var)
                && let Some(value) = number(num)
            {
                return Some(Threshold { cmp, value, line: line_no });
            }
            return None;
        }
    }
    None
}

/// The threshold a body asserts directly.
fn direct_threshold(def: &Def) -> Option<Threshold> {
    def.body.iter().find_map(|(n, l)| threshold_in(l, *n))
}

/// Reads `model_test.py`'s top-level tests and their accuracy thresholds. Never fails.
pub fn read_model_test(text: &str) -> ModelTest {
    let defs = top_level_defs(text);
    let mut tests = Vec::new();
    for d in defs.iter().filter(|d| d.name.starts_with("test")) {
        let threshold = direct_threshold(d).or_else(|| {
            // A helper it calls (`check_acc()`), one level deep.
            defs.iter().filter(|h| h.name != d.name && !h.name.is_empty()).find_map(|h| {
                let call = format!("{}(", h.name);
                let calls = d.body.iter().any(|(_, l)| {
                    l.match_indices(&call).any(|(i, _)| {
                        i == 0 || !l[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
                    })
                });
                if calls { direct_threshold(h) } else { None }
            })
        });
        tests.push(TestFunction { name: d.name.to_string(), line: d.line, threshold });
    }
    ModelTest { tests }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The course's model_test.py as distributed (from the facts).
    pub use crate::student::COURSE_MODEL_TEST;

    #[test]
    fn the_course_model_test() {
        let m = read_model_test(COURSE_MODEL_TEST);
        let names: Vec<&str> = m.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_inference",
                "test_acc_80",
                "test_acc_82",
                "test_acc_84",
                "test_acc_86",
                "test_acc_88",
                "test_acc_90",
                "test_acc_91",
                "test_acc_92",
                "test_softmax",
                "test_relu"
            ]
        );
        let inf = m.test("test_inference").unwrap();
        assert_eq!((inf.line, inf.threshold.clone()), (12, None));
        let t80 = m.test("test_acc_80").unwrap();
        assert_eq!(t80.line, 71);
        assert_eq!(t80.threshold, Some(Threshold { cmp: Cmp::Ge, value: 0.8, line: 73 }));
        assert_eq!(m.test("test_acc_90").unwrap().threshold.as_ref().unwrap().value, 0.9);
        assert_eq!(m.test("test_softmax").unwrap().threshold, None);
        assert_eq!(m.test("test_relu").unwrap().threshold, None);
        assert_eq!(m.test_with_threshold(Cmp::Ge, 0.9).unwrap().name, "test_acc_90");
        assert!(m.test_with_threshold(Cmp::Gt, 0.9).is_none());
        assert!(m.test("test_nothing").is_none());
    }

    #[test]
    fn helpers_operators_and_odd_text() {
        let text = "def check(acc):\n    assert acc > 0.85  # strict\n\n\"\"\"\ndef test_in_docstring():\n    pass\n\"\"\"\n@pytest.mark.slow\ndef test_strict():\n    check(load())\n\nclass TestX:\n    def test_method(self):\n        assert acc >= 0.5\n\ndef test_flipped():\n    assert (0.9 <= acc), 'too low'\n\ndef test_param():\n    assert th >= acc_min\n";
        let m = read_model_test(text);
        let names: Vec<&str> = m.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["test_strict", "test_flipped", "test_param"]);
        assert_eq!(m.tests[0].threshold, Some(Threshold { cmp: Cmp::Gt, value: 0.85, line: 2 }));
        assert_eq!(m.tests[1].threshold, Some(Threshold { cmp: Cmp::Ge, value: 0.9, line: 17 }));
        assert_eq!(m.tests[2].threshold, None);
        // Anything at all is tolerated.
        for junk in ["", "\0\0\0", "def", "def (:\n", "'''", "assert >= 0.9", "def test_a(:\n    assert acc >= 0..9\n"]
        {
            let _ = read_model_test(junk);
        }
    }
}
