//! Findings about the architecture file as a file: missing, not JSON (`invalid-json`), or JSON in
//! another layout than the course's list (`not-course-layout`). Also turns the file into entries
//! leniently, so that one bad entry does not hide the findings about the others.

use super::{Finding, Location, schema};
use crate::checks::Code;
use crate::model::arch::{ArchEntry, Layout, detect_layout, parse_arch};
use crate::text::file_name;
use serde_json::Value;

/// The entries of an architecture file that parsed.
pub struct ParsedArch {
    pub entries: Vec<ArchEntry>,
    /// False when some entries were invalid (and reported).
    pub complete: bool,
}

/// The `fmtool convert` command for the hints: the Keras file beside the export when there is one.
pub fn convert_command(keras_file: Option<&str>, out_dir: Option<&str>) -> String {
    let input = keras_file.unwrap_or("model.h5");
    match out_dir {
        Some(d) if d != "model" && d != "model/" => format!("fmtool convert {input} --out {d} --force"),
        _ => format!("fmtool convert {input} --force"),
    }
}

/// The finding for an architecture file that is not there.
pub fn missing(shown: &str, convert: &str) -> Finding {
    Finding::error(Code::MissingFile, Location::file(shown), format!("{} is missing", file_name(shown)))
        .hint(format!("export the architecture with the course notebook, or run `{convert}`"))
}

/// Checks the bytes of the architecture file (shown as `shown` in findings). `convert` is the
/// command that re-creates the course files, for hints. The command reads the file.
pub fn check_bytes(bytes: &[u8], shown: &str, convert: &str) -> (Option<ParsedArch>, Vec<Finding>) {
    match parse_text(bytes, shown, convert) {
        Ok(value) => check_value(&value, shown, convert),
        Err(f) => (None, vec![*f]),
    }
}

/// Parses the bytes as JSON, or returns the `invalid-json` finding.
pub fn parse_text(bytes: &[u8], shown: &str, convert: &str) -> Result<Value, Box<Finding>> {
    serde_json::from_slice(bytes).map_err(|e| -> Box<Finding> {
        let text = String::from_utf8_lossy(bytes);
        let hint = if text.contains("NaN") || text.contains("Infinity") {
            "Python's json module writes NaN and Infinity, which are not JSON; a config value is not finite. \
             Export again after fixing it, or pass allow_nan=False to json.dump to find it"
                .to_string()
        } else if e.is_eof() {
            format!("the file ends too early (truncated?); export it again, or run `{convert}`")
        } else {
            format!("export it again with json.dump, or run `{convert}`")
        };
        Box::new(Finding::error(Code::InvalidJson, Location::file(shown), format!("not valid JSON: {e}")).hint(hint))
    })
}

/// Checks a parsed document: its layout, the schema, then the entries one by one.
pub fn check_value(value: &Value, shown: &str, convert: &str) -> (Option<ParsedArch>, Vec<Finding>) {
    let layout = detect_layout(value);
    if layout != Layout::Course {
        let f = Finding::error(Code::NotCourseLayout, Location::json(shown, "$", None), layout.describe())
            .hint(format!(
                "the grader reads a list with one {{\"name\", \"type\", \"config\", \"weights\"}} entry per layer; run `{convert}` to write it from the saved Keras model"
            ));
        return (None, vec![f]);
    }
    let mut findings = schema::validate(value, shown);
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut entries = Vec::with_capacity(items.len());
    let mut complete = true;
    for (index, item) in items.iter().enumerate() {
        // One entry at a time: a bad entry is reported (by the schema) and skipped.
        match parse_arch(&Value::Array(vec![item.clone()])) {
            Ok(mut one) if one.len() == 1 => {
                let mut e = one.remove(0);
                e.index = index;
                entries.push(e);
            }
            Ok(_) | Err(_) => complete = false,
        }
    }
    if !complete && findings.is_empty() {
        // The schema accepted what parse_arch refused: report parse_arch's reason.
        if let Err(e) = parse_arch(value) {
            findings.push(Finding::error(Code::Schema, Location::json(shown, "$", None), e.message).maybe_hint(e.hint));
        }
    }
    (Some(ParsedArch { entries, complete }), findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const F: &str = "model/fashion_mnist.json";
    const CONVERT: &str = "fmtool convert model/fashion_mnist.h5 --force";

    #[test]
    fn recognises_keras_layouts_and_hints_convert() {
        for v in [
            json!({"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {}}]}}),
            json!([{"class_name": "Dense", "config": {"units": 10}}]),
            json!({"layers": [{"name": "d", "type": "Dense", "config": {}, "weights": []}]}),
            json!("hello"),
        ] {
            let (parsed, f) = check_value(&v, F, CONVERT);
            assert!(parsed.is_none());
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].code, "not-course-layout");
            assert!(f[0].hint.as_deref().unwrap().contains(CONVERT), "{:?}", f[0]);
        }
        let (_, f) = check_value(&json!({"class_name": "Sequential", "config": {"layers": []}}), F, CONVERT);
        assert!(f[0].message.contains("model.to_json()"), "{}", f[0].message);
    }

    #[test]
    fn invalid_json_gives_line_and_column() {
        let f = parse_text(b"[{\"name\": \"d\",\n \"type\": }]", F, CONVERT).unwrap_err();
        assert_eq!(f.code, "invalid-json");
        assert!(f.message.contains("line 2"), "{}", f.message);
        let f = parse_text(b"[{\"name\": \"d\"", F, CONVERT).unwrap_err();
        assert!(f.hint.unwrap().contains("truncated"));
        let f = parse_text(b"[{\"config\": {\"x\": NaN}}]", F, CONVERT).unwrap_err();
        assert!(f.hint.unwrap().contains("NaN"));
    }

    #[test]
    fn a_bad_entry_does_not_hide_the_others() {
        let v = json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            {"name": "dense", "type": "Dense", "config": {"units": 10}, "weights": ["dense_0", 7]},
            {"name": "dense_1", "type": "Dense", "config": {"units": 10}, "weights": ["dense_1_0", "dense_1_1"]},
        ]);
        let (parsed, f) = check_value(&v, F, CONVERT);
        let parsed = parsed.unwrap();
        assert!(!parsed.complete);
        assert_eq!(parsed.entries.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[1].weights[1]"));
    }

    #[test]
    fn missing_file_is_a_finding() {
        let f = missing(F, CONVERT);
        assert_eq!(f.code, "missing-file");
        assert!(f.message.contains("fashion_mnist.json is missing"));
    }
}
