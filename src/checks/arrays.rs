//! Findings about the arrays in the npz themselves: members that are pickles or object arrays
//! (`pickled-array`), not `.npy` at all (`not-npy-member`) or undecodable (`unreadable-array`);
//! integer or boolean weights (`non-float-weights`); NaN or infinite values (`non-finite`); float64
//! and float16 weights (warnings). In arrays no layer uses only broken members are reported, as
//! warnings: the grader never reads their values.

use super::{Finding, Location, ModelView, Severity, unravel};
use crate::checks::Code;
use crate::model::Npz;
use crate::model::npz::Dtype;
use crate::model::npz::MemberErrorKind;
use std::collections::HashMap;

pub fn check(view: &ModelView, npz: &Npz) -> Vec<Finding> {
    // The first layer that lists each key, hashed: a linear search per member was quadratic.
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for e in view.arch {
        for w in &e.weights {
            owner.entry(w.as_str()).or_insert(e.name.as_str());
        }
    }
    let mut out = Vec::new();
    let mut float64: Vec<(&str, String, Location)> = Vec::new();
    for entry in &npz.entries {
        let key = entry.key.as_str();
        // When some entries did not parse, an array may belong to one of them: treat it as used.
        let referenced = owner.contains_key(key) || !view.arch_complete;
        let sev = if referenced { Severity::Error } else { Severity::Warning };
        let at = Location::npz_key(view.npz_file, key);
        let at = Location { layer: owner.get(key).map(|n| n.to_string()), ..at };
        let unused_note = if referenced { "" } else { " (no layer uses it)" };
        let a = match &entry.array {
            // The values of an array nobody reads do not matter (it is reported as unused).
            Ok(_) if !referenced => continue,
            Ok(a) => a,
            Err(e) => {
                let msg = e.message.as_str();
                let (code, hint) = match e.kind {
                    MemberErrorKind::Pickled => (
                        Code::PickledArray,
                        "np.load(..., allow_pickle=False), as graders call it, refuses pickles: save each weight as a plain float32 array (np.asarray(w, dtype=np.float32)), never a list of arrays or a Python object",
                    ),
                    MemberErrorKind::NotNpy => (
                        Code::NotNpyMember,
                        "an .npz must hold only .npy arrays: write it with np.savez, not by zipping other files",
                    ),
                    MemberErrorKind::Unreadable => (
                        Code::UnreadableArray,
                        "the file may be truncated or written by something other than NumPy; save it again with np.savez",
                    ),
                };
                // The reader's message may quote a whole crafted header: quote a bounded part.
                let clip = crate::text::clip;
                let msg = if msg.starts_with("member ") {
                    clip(msg, 300)
                } else {
                    format!("{}: {}", clip(key, 100), clip(msg, 300))
                };
                out.push(Finding::new(code, sev, at, format!("{msg}{unused_note}")).hint(hint));
                continue;
            }
        };
        let shape = crate::layers::fmt_dims(&a.shape);
        match a.dtype {
            Dtype::F32 => {}
            Dtype::F64 => float64.push((key, shape.clone(), at.clone())),
            Dtype::F16 => out.push(
                Finding::warning(Code::Float16Weights, at.clone(), format!("{key} {shape} is float16; precision was lost"))
                    .hint("save the float32 weights from get_weights() without casting"),
            ),
            Dtype::Int | Dtype::Bool => out.push(
                Finding::new(Code::NonFloatWeights,
                    sev,
                    at.clone(),
                    format!("{key} {shape} has dtype {} ({}), not float", a.dtype.numpy_name(), a.descr),
                )
                .hint("weights must be float32 arrays; an integer array usually means a cast or rounding went wrong before np.savez"),
            ),
        }
        let (nan, inf) = a.non_finite();
        // A float64 value beyond float32's range (1e300) is finite here but infinite once the
        // engine computes in float32: an error now, so that `check` and `score` agree.
        let too_big = |v: f64| v.is_finite() && (v as f32).is_infinite();
        if nan + inf == 0
            && let Some(first) = a.values().position(too_big)
        {
            let count = a.values().filter(|&v| too_big(v)).count();
            let idx = unravel(first, &a.shape);
            let idx = format!("[{}]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
            out.push(
                Finding::new(Code::NonFinite,
                    sev,
                    at,
                    format!(
                        "{key} {shape} has {count} value(s) beyond float32's range (the first is {:e} at {idx}); the grader computes in float32, where they are infinite",
                        a.value(first)
                    ),
                )
                .hint("weights must fit float32 (|w| < 3.4e38); save the float32 weights from get_weights()"),
            );
            continue;
        }
        if nan + inf > 0 {
            let first = a.values().position(|v| !v.is_finite()).unwrap_or(0);
            let idx = unravel(first, &a.shape);
            let idx = format!("[{}]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
            out.push(
                Finding::new(Code::NonFinite,
                    sev,
                    at,
                    format!(
                        "{key} {shape} has {nan} NaN and {inf} infinite value(s) of {}; the first is {} at {idx}",
                        a.len(),
                        a.value(first)
                    ),
                )
                .hint("training diverged (a learning rate too high, or unnormalized inputs); train again, e.g. with a lower learning rate and inputs scaled to [0, 1]"),
            );
        }
    }
    // One warning for the whole file when several arrays are float64: it is one export decision.
    let hint = "the course notebook saves float32; convert with w.astype(np.float32) (float64 doubles the file and is not what Keras computed with)";
    match float64.as_slice() {
        [] => {}
        [(key, shape, at)] => out.push(
            Finding::warning(
                Code::Float64Weights,
                at.clone(),
                format!("{key} {shape} is float64; Keras weights are float32"),
            )
            .hint(hint),
        ),
        many => {
            let keys: Vec<&str> = many.iter().map(|(k, _, _)| *k).take(4).collect();
            let more = if many.len() > 4 { ", ..." } else { "" };
            out.push(
                Finding::warning(
                    Code::Float64Weights,
                    Location::file(view.npz_file),
                    format!(
                        "{} of {} arrays are float64 ({}{more}); Keras weights are float32",
                        many.len(),
                        npz.entries.len(),
                        keys.join(", ")
                    ),
                )
                .hint(hint),
            )
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::grader::Grader;
    use crate::model::npz::{MemberError, NpyArray, NpzEntry, Values};

    fn with_entry(mut n: Npz, key: &str, array: Result<NpyArray, MemberError>) -> Npz {
        n.entries.retain(|e| e.key != key);
        n.entries.push(NpzEntry { key: key.into(), array });
        n
    }

    fn array(dtype: Dtype, descr: &str, shape: &[usize], data: Vec<f64>) -> NpyArray {
        let data = match dtype {
            Dtype::F32 => Values::F32(data.iter().map(|&v| v as f32).collect()),
            _ => Values::F64(data),
        };
        NpyArray { descr: descr.into(), dtype, shape: shape.to_vec(), fortran_order: false, data }
    }

    #[test]
    fn nan_and_inf_are_counted_with_first_index() {
        let (a, n) = mlp();
        let mut data = vec![0.0; 1280];
        data[130] = f64::NAN;
        data[131] = f64::INFINITY;
        data[900] = f64::NAN;
        let n = with_entry(n, "dense_1_0", Ok(array(Dtype::F32, "<f4", &[128, 10], data)));
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["non-finite"]);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].location.key.as_deref(), Some("dense_1_0"));
        assert_eq!(f[0].location.layer.as_deref(), Some("dense_1"));
        assert!(
            f[0].message.contains("2 NaN and 1 infinite value(s) of 1280; the first is NaN at [13, 0]"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn dtypes() {
        let (a, n) = mlp();
        let n = with_entry(n, "dense_1_1", Ok(array(Dtype::Int, "<i8", &[10], vec![0.0; 10])));
        let n = with_entry(n, "dense_0", Ok(array(Dtype::F64, "<f8", &[784, 128], vec![0.0; 784 * 128])));
        let n = with_entry(n, "spare", Ok(array(Dtype::Int, "<i4", &[2], vec![1.0, 2.0])));
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["non-float-weights", "float64-weights"], "an unused array's dtype does not matter");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("dtype integer (<i8)"));
        assert_eq!(f[1].severity, Severity::Warning);
        assert_eq!(f[1].location.key.as_deref(), Some("dense_0"));
        let n = with_entry(n, "dense_1", Ok(array(Dtype::F64, "<f8", &[128], vec![0.0; 128])));
        let f = check(&view(&a, &n, Grader::Full), &n);
        let f64s: Vec<&Finding> = f.iter().filter(|f| f.code == "float64-weights").collect();
        assert_eq!(f64s.len(), 1, "grouped: {f:?}");
        assert!(f64s[0].message.starts_with("2 of 5 arrays are float64 (dense_0, dense_1)"), "{}", f64s[0].message);
    }

    #[test]
    fn pickles_and_foreign_members() {
        let (a, n) = mlp();
        let n = with_entry(
            n,
            "dense_0",
            Err(MemberError::new(
                MemberErrorKind::Pickled,
                "object array (pickled Python objects); fmtool never unpickles",
            )),
        );
        let n = with_entry(
            n,
            "notes.txt",
            Err(MemberError::new(MemberErrorKind::NotNpy, "member notes.txt is not a .npy array")),
        );
        let f = check(&view(&a, &n, Grader::Full), &n);
        assert_eq!(codes(&f), ["pickled-array", "not-npy-member"]);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].hint.as_deref().unwrap().contains("allow_pickle=False"));
        assert_eq!(f[1].severity, Severity::Warning);
    }
}
