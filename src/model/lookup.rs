//! Hashed key lookups over an [`Npz`], with exactly [`Npz::get`]'s answers: `check` and the engine
//! look up every weight of a 20,000-layer model, and a linear search per key made that quadratic.

use super::npz::{NpyArray, Npz, NpzEntry};
use crate::error::Result;
use std::collections::HashMap;

/// The entries of one npz by key, built once per model.
pub struct NpzIndex<'a> {
    npz: &'a Npz,
    by_key: HashMap<&'a str, Vec<usize>>,
}

impl<'a> NpzIndex<'a> {
    pub fn new(npz: &'a Npz) -> NpzIndex<'a> {
        let mut by_key: HashMap<&'a str, Vec<usize>> = HashMap::with_capacity(npz.entries.len());
        for (i, e) in npz.entries.iter().enumerate() {
            by_key.entry(e.key.as_str()).or_default().push(i);
        }
        NpzIndex { npz, by_key }
    }

    pub fn npz(&self) -> &'a Npz {
        self.npz
    }

    /// What `npz.get(key)` returns. `Npz::get` only ever answers with an entry whose key is `key`
    /// or `key` without `.npy` (NumPy's member lookup); when there are no such entries the answer
    /// is `None` at once, when there is exactly one entry keyed `key` it is that entry, and the
    /// rare ambiguous cases (duplicate members, `x` beside `x.npy`) ask `Npz::get` itself, so the
    /// reader's rules stay in one place.
    pub fn get(&self, key: &str) -> Option<&'a NpzEntry> {
        let exact = self.by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let stem = key.strip_suffix(".npy").and_then(|s| self.by_key.get(s)).map(Vec::as_slice).unwrap_or(&[]);
        match (exact, stem) {
            ([], []) => None,
            ([i], []) => Some(&self.npz.entries[*i]),
            _ => self.npz.get(key),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// What `npz.array(key)` returns (the error, rare, comes from `Npz::array` itself).
    pub fn array(&self, key: &str) -> Result<&'a NpyArray> {
        match self.get(key) {
            Some(NpzEntry { array: Ok(a), .. }) => Ok(a),
            _ => self.npz.array(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::npz::{read_npz_bytes, write_npz};
    use ndarray::ArrayD;

    #[test]
    fn answers_as_npz_get_does() {
        let names = ["a", "b", "c.npy", "dense_0", "dense_1"];
        let arrays: Vec<(String, ArrayD<f32>)> =
            names.iter().map(|n| (n.to_string(), ArrayD::zeros(ndarray::IxDyn(&[2])))).collect();
        let cur = write_npz(std::io::Cursor::new(Vec::new()), &arrays).unwrap();
        let npz = read_npz_bytes(std::path::Path::new("m.npz"), cur.get_ref()).unwrap();
        let idx = NpzIndex::new(&npz);
        for k in ["a", "b", "c", "c.npy", "c.npy.npy", "dense_0", "dense_1", "dense_2", "a.npy", "", "x"] {
            assert_eq!(idx.get(k).map(|e| &e.key), npz.get(k).map(|e| &e.key), "{k}");
            assert_eq!(idx.array(k).is_ok(), npz.array(k).is_ok(), "{k}");
        }
    }
}
