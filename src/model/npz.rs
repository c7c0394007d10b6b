//! NumPy's `.npz` (a zip of `.npy` arrays) and `.npy` formats: reading every variant students
//! produce (`np.savez`, `np.savez_compressed`, float32/float64/integer, C or Fortran order, either
//! byte order) and writing exactly what `np.savez` writes. Pickles are never executed.

use crate::err;
use crate::error::Result;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use std::borrow::Cow;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The element type of an array as NumPy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F16,
    F32,
    F64,
    Int,
    Bool,
}

impl Dtype {
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::F32 | Dtype::F64)
    }

    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::Int => "integer",
            Dtype::Bool => "bool",
        }
    }
}

/// An array's values in C order, in the precision the file holds them: float32 stays float32
/// (what Keras computes and the engine runs: no widening and narrowing on the way), everything
/// else is widened exactly to float64 (float64 weights stay exact for the course template's
/// float64 pass; integers, booleans and float16 are exact in float64).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// One array, decoded into C order. [`NpyArray::to_f32`] gives the float32 tensor the engine
/// runs, [`NpyArray::to_f64`] the float64 one the course template computes with.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// The dtype string from the header (`<f4`, `>f8`, ...).
    pub descr: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub fortran_order: bool,
    pub data: Values,
}

impl NpyArray {
    pub fn from_f32(array: &ArrayD<f32>) -> NpyArray {
        NpyArray {
            descr: "<f4".into(),
            dtype: Dtype::F32,
            shape: array.shape().to_vec(),
            fortran_order: false,
            data: Values::F32(array.iter().copied().collect()),
        }
    }

    /// Takes the tensor's values without copying them when it is in standard layout.
    pub fn from_f32_owned(array: ArrayD<f32>) -> NpyArray {
        let shape = array.shape().to_vec();
        let data = if array.is_standard_layout() {
            array.into_raw_vec_and_offset().0
        } else {
            array.iter().copied().collect()
        };
        NpyArray { descr: "<f4".into(), dtype: Dtype::F32, shape, fortran_order: false, data: Values::F32(data) }
    }

    /// How many values the array holds.
    pub fn len(&self) -> usize {
        match &self.data {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` (C order), exactly, as float64.
    pub fn value(&self, i: usize) -> f64 {
        match &self.data {
            Values::F32(v) => v[i] as f64,
            Values::F64(v) => v[i],
        }
    }

    /// Every value (C order), exactly, as float64.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let (narrow, wide) = match &self.data {
            Values::F32(v) => (Some(v.iter().map(|&x| x as f64)), None),
            Values::F64(v) => (None, Some(v.iter().copied())),
        };
        narrow.into_iter().flatten().chain(wide.into_iter().flatten())
    }

    pub fn to_f32(&self) -> ArrayD<f32> {
        let data = match &self.data {
            Values::F32(v) => v.clone(),
            Values::F64(v) => v.iter().map(|&x| x as f32).collect(),
        };
        ArrayD::from_shape_vec(IxDyn(&self.shape), data).expect("data length matches shape (checked when read)")
    }

    pub fn to_f64(&self) -> ArrayD<f64> {
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.values().collect())
            .expect("data length matches shape (checked when read)")
    }

    /// The number of NaN and infinite values.
    pub fn non_finite(&self) -> (usize, usize) {
        let nan = self.values().filter(|v| v.is_nan()).count();
        let inf = self.values().filter(|v| v.is_infinite()).count();
        (nan, inf)
    }
}

/// What kind of trouble a member is: the checks name each kind differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberErrorKind {
    /// A pickle, or an object array (pickled Python objects): never loaded.
    Pickled,
    /// Not a `.npy` stream at all (another file zipped into the archive).
    NotNpy,
    /// A `.npy` stream that cannot be decoded (truncated, a bad header, over a budget).
    Unreadable,
}

/// Why one member could not be read: its kind, and the message naming the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberError {
    pub kind: MemberErrorKind,
    pub message: String,
}

impl MemberError {
    pub fn new(kind: MemberErrorKind, message: impl Into<String>) -> MemberError {
        MemberError { kind, message: message.into() }
    }

    /// The same error with `member NAME: ` in front.
    fn in_member(self, name: &str) -> MemberError {
        MemberError { message: format!("member {name}: {}", self.message), ..self }
    }
}

impl From<String> for MemberError {
    fn from(message: String) -> MemberError {
        MemberError::new(MemberErrorKind::Unreadable, message)
    }
}

impl std::fmt::Display for MemberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One member of an npz: its key (the member name without `.npy`) and the array, or why it could
/// not be read. Members are kept even when broken so that `check` can report all of them.
#[derive(Debug, Clone)]
pub struct NpzEntry {
    pub key: String,
    pub array: Result<NpyArray, MemberError>,
}

/// A whole npz file, members in archive order.
#[derive(Debug, Clone, Default)]
pub struct Npz {
    pub path: PathBuf,
    pub entries: Vec<NpzEntry>,
    /// The keys of entries whose member name is the key itself (a member stored without `.npy`,
    /// or `x.npy` beside a member `x`); every other entry's member is `key + ".npy"`. NumPy finds
    /// a key as a member name first, then as a name without `.npy`; [`Npz::get`] does the same.
    pub plain: Vec<String>,
}

impl Npz {
    /// The entry `np.load(path)[key]` reads: the member named `key`, else the member `key.npy`.
    pub fn get(&self, key: &str) -> Option<&NpzEntry> {
        let is_plain = |k: &str| self.plain.iter().any(|p| p == k);
        let exact = self.entries.iter().find(|e| e.key == key && is_plain(key));
        let suffixed = || {
            let stem = key.strip_suffix(".npy")?;
            self.entries.iter().find(|e| e.key == stem && !is_plain(stem))
        };
        exact.or_else(suffixed).or_else(|| self.entries.iter().find(|e| e.key == key && !is_plain(key)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// The array under `key`, or an error naming the file and the key.
    pub fn array(&self, key: &str) -> Result<&NpyArray> {
        match self.get(key) {
            None => Err(err!("{}: no array named {key:?}", self.path.display())
                .with_hint(format!("the file holds {}", summarize_keys(self.keys())))),
            Some(NpzEntry { array: Err(e), .. }) => Err(err!("{}: array {key:?}: {e}", self.path.display())),
            Some(NpzEntry { array: Ok(a), .. }) => Ok(a),
        }
    }
}

fn summarize_keys<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let keys: Vec<&str> = keys.collect();
    match keys.len() {
        0 => "no arrays".into(),
        n if n <= 8 => format!("{n} arrays: {}", keys.join(", ")),
        n => format!("{n} arrays: {}, ...", keys[..8].join(", ")),
    }
}

/// Reads an npz file. Errors that make the whole file unreadable (not a zip, truncated central
/// directory) are returned; errors in single members are kept in their [`NpzEntry`].
pub fn read_npz(path: &Path) -> Result<Npz> {
    let bytes = crate::fsguard::read(path, crate::fsguard::budget::NPZ)?;
    read_npz_bytes(path, &bytes)
}

/// Like [`read_npz`], from bytes already in memory; `path` is used in messages only.
pub fn read_npz_bytes(path: &Path, bytes: &[u8]) -> Result<Npz> {
    let shown = path.display();
    if bytes.starts_with(b"\x93NUMPY") {
        return Err(err!("{shown} is a single .npy array, not an .npz archive")
            .with_hint("save all weights into one archive with np.savez(\"fashion_mnist.npz\", **arrays)"));
    }
    if bytes.first() == Some(&0x80) {
        return Err(err!("{shown} is a Python pickle, not an .npz archive; fmtool never loads pickles")
            .with_hint("save the weights with np.savez(\"fashion_mnist.npz\", **arrays)"));
    }
    if !bytes.starts_with(b"PK") {
        return Err(err!("{shown} is not an .npz archive (no zip signature)")
            .with_hint("save the weights with np.savez(\"fashion_mnist.npz\", **arrays)"));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| err!("{shown} is not a readable .npz archive ({e}); the file may be truncated"))?;
    if zip.len() > MAX_MEMBERS {
        return Err(err!(
            "{shown} holds {} members; a model's weights are at most {MAX_MEMBERS} arrays, so this is not a weight archive",
            zip.len()
        ));
    }
    let mut entries: Vec<NpzEntry> = Vec::with_capacity(zip.len());
    let mut names: Vec<String> = Vec::with_capacity(zip.len());
    let mut budget = Budget { file_left: MAX_FILE_VALUES };
    for i in 0..zip.len() {
        let mut member = match zip.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                entries.push(NpzEntry { key: format!("#{i}"), array: Err(format!("unreadable member: {e}").into()) });
                continue;
            }
        };
        let name = match member.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                entries.push(NpzEntry {
                    key: format!("#{i}"),
                    array: Err(format!("member with an unreadable name: {e}").into()),
                });
                continue;
            }
        };
        if member.is_dir() {
            continue;
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let array = read_npy_member_budgeted(&mut member, &name, &mut budget);
        entries.push(NpzEntry { key, array });
        names.push(name);
    }
    Ok(numpy_view(path, entries, names))
}

/// Arranges the members as `np.load` sees them: of several members with one name only the last
/// is readable (zipfile's name table keeps the last); a member `x.npy` is found under `x` unless a
/// member named `x` exists, when only the full name `x.npy` finds it.
fn numpy_view(path: &Path, entries: Vec<NpzEntry>, names: Vec<String>) -> Npz {
    use std::collections::HashSet;
    let last: std::collections::HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let raw: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut out = Npz { path: path.to_path_buf(), entries: Vec::new(), plain: Vec::new() };
    for (i, (mut e, name)) in entries.into_iter().zip(&names).enumerate() {
        if last.get(name.as_str()) != Some(&i) {
            continue;
        }
        match name.strip_suffix(".npy") {
            Some(stem) if !raw.contains(stem) => {}
            _ => {
                e.key = name.clone();
                out.plain.push(name.clone());
            }
        }
        out.entries.push(e);
    }
    out
}

/// At most this many values in one array: a Fashion-MNIST model's largest weight is far smaller
/// (a 784x4096 Dense kernel is 3.2 M), and the limit keeps one array under 128 MB as float64.
pub const MAX_MEMBER_VALUES: usize = 16 << 20;
/// At most this many values in all arrays of one file together.
pub const MAX_FILE_VALUES: usize = 32 << 20;
/// At most this many members (a 20,000-layer model has 40,000 arrays).
pub const MAX_MEMBERS: usize = 100_000;
/// NumPy refuses a header longer than this without `allow_pickle` (`_MAX_HEADER_SIZE`).
pub const MAX_HEADER_CHARS: usize = 10_000;

/// What is left of the file's value budget while its members are read.
struct Budget {
    file_left: usize,
}

/// Reads one member against the per-member and per-file budgets.
fn read_npy_member_budgeted(r: &mut impl Read, name: &str, budget: &mut Budget) -> Result<NpyArray, MemberError> {
    read_npy_member_limited(r, name, MAX_MEMBER_VALUES.min(budget.file_left), budget)
}

/// Reads one `.npy` stream, never allocating more than the stream really holds.
#[cfg(test)]
fn read_npy_member(r: &mut impl Read, name: &str) -> Result<NpyArray, MemberError> {
    read_npy_member_limited(r, name, MAX_MEMBER_VALUES, &mut Budget { file_left: MAX_FILE_VALUES })
}

/// Reads one `.npy` stream of at most `max_values` values (checked on the header, before any data
/// is read or allocated), exactly as NumPy's `read_array` accepts or refuses it.
fn read_npy_member_limited(
    r: &mut impl Read,
    name: &str,
    max_values: usize,
    budget: &mut Budget,
) -> Result<NpyArray, MemberError> {
    let mut head = [0u8; 10];
    read_exact_or(r, &mut head).map_err(|_| format!("member {name} is too short to be an array"))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(if head[0] == 0x80 {
            MemberError::new(
                MemberErrorKind::Pickled,
                format!("member {name} is a Python pickle, not a .npy array; fmtool never loads pickles"),
            )
        } else {
            MemberError::new(MemberErrorKind::NotNpy, format!("member {name} is not a .npy array"))
        });
    }
    if head[7] != 0 || !(1..=3).contains(&head[6]) {
        return Err(format!("member {name}: unknown .npy format version {}.{}", head[6], head[7]).into());
    }
    let header_len = match head[6] {
        1 => u16::from_le_bytes([head[8], head[9]]) as usize,
        2 | 3 => {
            let mut more = [0u8; 2];
            read_exact_or(r, &mut more).map_err(|_| format!("member {name}: truncated header"))?;
            u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize
        }
        v => return Err(format!("member {name}: unknown .npy format version {v}").into()),
    };
    // NumPy counts characters after decoding (latin-1 for versions 1 and 2, UTF-8 for 3); in
    // latin-1 one byte is one character, and UTF-8 never has more characters than bytes.
    if header_len > MAX_HEADER_CHARS * 4 {
        return Err(format!(
            "member {name}: header of {header_len} bytes is longer than NumPy's limit of {MAX_HEADER_CHARS} characters"
        )
        .into());
    }
    let mut header = vec![0u8; header_len];
    read_exact_or(r, &mut header).map_err(|_| format!("member {name}: truncated header"))?;
    let header: String = if head[6] == 3 {
        String::from_utf8(header).map_err(|_| format!("member {name}: the header is not UTF-8 text"))?
    } else {
        header.iter().map(|&b| b as char).collect()
    };
    if header.chars().count() > MAX_HEADER_CHARS {
        return Err(format!(
            "member {name}: header of {} characters is longer than NumPy's limit of {MAX_HEADER_CHARS}",
            header.chars().count()
        )
        .into());
    }
    let h = parse_header_versioned(&header, head[6]).map_err(|e| format!("member {name}: {e}"))?;
    let (dtype, size, little) = parse_descr(&h.descr).map_err(|e| e.in_member(name))?;
    let count = h.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let nbytes = count.and_then(|c| c.checked_mul(size));
    let (count, nbytes) = match (count, nbytes) {
        (Some(c), Some(n)) if c <= max_values => (c, n),
        _ => {
            let values = h.shape.iter().try_fold(1u128, |a, &d| a.checked_mul(d as u128));
            let values = values.map(|v| v.to_string()).unwrap_or_else(|| "too many".into());
            return Err(MemberError::from(if max_values < MAX_MEMBER_VALUES {
                format!(
                    "member {name}: shape {:?} ({values} values) is over what is left of the file's budget of {MAX_FILE_VALUES} values; the arrays together are far larger than any Fashion-MNIST model",
                    h.shape
                )
            } else {
                format!(
                    "member {name}: shape {:?} ({values} values) is over the budget of {MAX_MEMBER_VALUES} values for one array; no Fashion-MNIST weight is that large",
                    h.shape
                )
            }));
        }
    };
    budget.file_left -= count;
    // Read at most what the header promises (plus one byte to detect trailing data). A lying
    // header cannot make us allocate more than the member really holds.
    let mut raw = Vec::with_capacity(nbytes.min(1 << 20));
    r.take(nbytes as u64 + 1).read_to_end(&mut raw).map_err(|e| format!("member {name}: cannot read data: {e}"))?;
    if raw.len() < nbytes {
        return Err(format!(
            "member {name}: header promises {nbytes} bytes of data for shape {:?}, but the member holds {}; the file is truncated or corrupt",
            h.shape,
            raw.len()
        ).into());
    }
    let data = match decode(&raw[..nbytes], dtype, size, little, &h.descr)? {
        Values::F32(v) => {
            Values::F32(c_order(&h.shape, h.fortran_order, v).map_err(|e| format!("member {name}: {e}"))?)
        }
        Values::F64(v) => {
            Values::F64(c_order(&h.shape, h.fortran_order, v).map_err(|e| format!("member {name}: {e}"))?)
        }
    };
    Ok(NpyArray { descr: h.descr, dtype, shape: h.shape, fortran_order: h.fortran_order, data })
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<()> {
    r.read_exact(buf)
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses a header as NumPy's `_read_array_header` does for format `version`: `ast.literal_eval`,
/// retried without Python 2's `L` suffixes for versions 1 and 2; then exactly the keys `descr`,
/// `fortran_order` and `shape`, a tuple of ints (not bools: NumPy's array constructor refuses
/// them), and a bool.
fn parse_header_versioned(h: &str, version: u8) -> Result<Header, String> {
    use super::pylit::{Lit, literal_eval};
    let shown = || format!("{:?}", crate::text::clip(h.trim_end(), 100));
    let d = match literal_eval(h, false) {
        Ok(d) => d,
        Err(e) if version <= 2 => {
            literal_eval(h, true).map_err(|_| format!("cannot parse the header {} ({e})", shown()))?
        }
        Err(e) => return Err(format!("cannot parse the header {} ({e})", shown())),
    };
    let Lit::Dict(pairs) = d else { return Err(format!("the header is not a dictionary: {}", shown())) };
    let pairs = pairs.unwrap_or_default();
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys != ["descr", "fortran_order", "shape"] {
        return Err(format!(
            "the header does not have exactly the keys 'descr', 'fortran_order' and 'shape' (it has {keys:?}); NumPy refuses it"
        ));
    }
    let get = |k: &str| &pairs.iter().find(|(pk, _)| pk == k).expect("key present").1;
    let descr = match get("descr") {
        Lit::Str(s) => s.clone(),
        Lit::List(_) => return Err("structured (record) arrays are not supported; save plain float arrays".into()),
        other => return Err(format!("descr {other:?} is not a dtype fmtool reads")),
    };
    let fortran_order = match get("fortran_order") {
        Lit::Bool(b) => *b,
        _ => return Err(format!("fortran_order is not True or False in the header {}", shown())),
    };
    let Lit::Tuple(items) = get("shape") else { return Err(format!("shape is not a tuple in the header {}", shown())) };
    let mut shape = Vec::with_capacity(items.len());
    for item in items {
        let d = match item {
            Lit::Int(Some(n)) => *n,
            Lit::Int(None) => i128::MAX,
            _ => return Err(format!("shape holds a value that is not an int in the header {}", shown())),
        };
        if d < 0 {
            return Err(format!("shape has a negative dimension in the header {}", shown()));
        }
        shape.push(usize::try_from(d).unwrap_or(usize::MAX));
    }
    Ok(Header { descr, fortran_order, shape })
}

/// Parses the Python dict literal of a format 1.0 header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }`.
#[cfg(test)]
fn parse_header(h: &str) -> Result<Header, String> {
    parse_header_versioned(h, 1)
}

/// Maps a descr such as `<f4` to (dtype, item size, little endian).
fn parse_descr(descr: &str) -> Result<(Dtype, usize, bool), MemberError> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let little = order != '>';
    let dtype = match code {
        "f2" => (Dtype::F16, 2),
        "f4" => (Dtype::F32, 4),
        "f8" => (Dtype::F64, 8),
        "i1" | "u1" => (Dtype::Int, 1),
        "i2" | "u2" => (Dtype::Int, 2),
        "i4" | "u4" => (Dtype::Int, 4),
        "i8" | "u8" => (Dtype::Int, 8),
        "b1" | "?" => (Dtype::Bool, 1),
        "O" => {
            return Err(MemberError::new(
                MemberErrorKind::Pickled,
                "object array (pickled Python objects); fmtool never unpickles. Save each weight as a plain float32 array",
            ));
        }
        other => return Err(format!("dtype {other:?} is not a number type fmtool reads").into()),
    };
    Ok((dtype.0, dtype.1, little))
}

/// `data` (of `shape`, Fortran order when `fortran` and more than one axis) in C order.
fn c_order<T: Copy>(shape: &[usize], fortran: bool, data: Vec<T>) -> Result<Vec<T>, ndarray::ShapeError> {
    if !fortran || shape.len() < 2 {
        return Ok(data);
    }
    let f = ArrayD::from_shape_vec(IxDyn(shape).f(), data)?;
    Ok(f.as_standard_layout().iter().copied().collect())
}

fn decode(raw: &[u8], dtype: Dtype, size: usize, little: bool, descr: &str) -> Result<Values, String> {
    if let (Dtype::F32, 4) = (dtype, size) {
        let chunks = raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        return Ok(Values::F32(
            chunks.map(|b| if little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) }).collect(),
        ));
    }
    decode_wide(raw, dtype, size, little, descr).map(Values::F64)
}

/// Every dtype but float32, widened exactly to float64.
fn decode_wide(raw: &[u8], dtype: Dtype, size: usize, little: bool, descr: &str) -> Result<Vec<f64>, String> {
    let signed = !descr.contains('u');
    let chunks = raw.chunks_exact(size);
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            chunks
                .map(|c| {
                    let b: [u8; $n] = c.try_into().expect("chunk size");
                    (if little { <$t>::from_le_bytes(b) } else { <$t>::from_be_bytes(b) }) as f64
                })
                .collect()
        };
    }
    Ok(match (dtype, size) {
        (Dtype::F64, 8) => conv!(f64, 8),
        (Dtype::F16, 2) => chunks
            .map(|c| {
                let b = [c[0], c[1]];
                f16_to_f64(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
            })
            .collect(),
        (Dtype::Bool, 1) | (Dtype::Int, 1) if !signed || dtype == Dtype::Bool => chunks.map(|c| c[0] as f64).collect(),
        (Dtype::Int, 1) => chunks.map(|c| c[0] as i8 as f64).collect(),
        (Dtype::Int, 2) if signed => conv!(i16, 2),
        (Dtype::Int, 2) => conv!(u16, 2),
        (Dtype::Int, 4) if signed => conv!(i32, 4),
        (Dtype::Int, 4) => conv!(u32, 4),
        (Dtype::Int, 8) if signed => conv!(i64, 8),
        (Dtype::Int, 8) => conv!(u64, 8),
        _ => return Err(format!("dtype {descr:?} is not supported")),
    })
}

/// IEEE half precision to double precision, exactly: the one half-float decoder (npy `<f2`
/// arrays, and HDF5 16-bit floats through `keras::h5`).
pub fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The bytes of one `.npy` file holding `array` as little-endian float32, exactly as NumPy 2 writes
/// it (format 1.0, header padded with spaces to a multiple of 64 bytes and ended by a newline).
pub fn npy_bytes_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let shape_txt = match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes arrays as an `np.savez` archive (stored, not compressed) into `w`, in the given order.
/// Timestamps are fixed so the same arrays always give the same bytes.
pub fn write_npz<W: Write + Seek>(w: W, arrays: &[(String, ArrayD<f32>)]) -> Result<W> {
    write_f32_members(
        w,
        arrays.iter().map(|(key, array)| {
            let data = match array.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(array.as_standard_layout().iter().copied().collect()),
            };
            Ok((key.as_str(), array.shape(), data))
        }),
    )
}

/// Writes the float32 arrays of `npz` as an `np.savez` archive, in entry order (the Keras
/// reader's course model, whose arrays are all float32).
pub fn write_npz_of<W: Write + Seek>(w: W, npz: &Npz) -> Result<W> {
    write_f32_members(
        w,
        npz.entries.iter().map(|e| {
            let key = &e.key;
            let a = e.array.as_ref().map_err(|m| err!("cannot write array {key}: {m}"))?;
            let Values::F32(data) = &a.data else { return Err(err!("cannot write array {key}: it is not float32")) };
            Ok((key.as_str(), a.shape.as_slice(), Cow::Borrowed(data.as_slice())))
        }),
    )
}

/// The one npz writer: each member `key.npy` holds `(shape, C-order values)`, stored (not
/// compressed) with fixed timestamps, so the same arrays always give the same bytes.
fn write_f32_members<'a, W: Write + Seek>(
    w: W,
    members: impl Iterator<Item = Result<(&'a str, &'a [usize], Cow<'a, [f32]>)>>,
) -> Result<W> {
    let mut zip = zip::ZipWriter::new(w);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .large_file(false);
    for member in members {
        let (key, shape, data) = member?;
        zip.start_file(format!("{key}.npy"), options).map_err(|e| err!("cannot write array {key}: {e}"))?;
        zip.write_all(&npy_bytes_f32(shape, &data)).map_err(|e| err!("cannot write array {key}: {e}"))?;
    }
    zip.finish().map_err(|e| err!("cannot finish the npz archive: {e}"))
}

/// Writes a single `.npy` file's bytes (used by `fmtool predict --out`).
pub fn npy_file_bytes(array: &ArrayD<f32>) -> Vec<u8> {
    let data: Vec<f32> = array.as_standard_layout().iter().copied().collect();
    npy_bytes_f32(array.shape(), &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn header_parses_numpy_variants() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }").unwrap();
        assert_eq!((h.descr.as_str(), h.fortran_order, h.shape), ("<f4", false, vec![784, 128]));
        let h = parse_header("{'descr': '>f8', 'fortran_order': True, 'shape': (10,), }").unwrap();
        assert_eq!(h.shape, vec![10]);
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (), }").unwrap();
        assert!(h.shape.is_empty());
        assert!(parse_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }").is_err());
    }

    #[test]
    fn write_then_read_round_trips() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        let b = array![0.5f32, -1.5].into_dyn();
        let cur = write_npz(
            std::io::Cursor::new(Vec::new()),
            &[("dense_0".into(), a.clone()), ("dense_1".into(), b.clone())],
        )
        .unwrap();
        let npz = read_npz_bytes(Path::new("t.npz"), cur.get_ref()).unwrap();
        assert_eq!(npz.keys().collect::<Vec<_>>(), ["dense_0", "dense_1"]);
        assert_eq!(npz.array("dense_0").unwrap().to_f32(), a);
        assert_eq!(npz.array("dense_1").unwrap().to_f32(), b);
        assert!(npz.array("dense_2").unwrap_err().message.contains("no array named \"dense_2\""));
    }

    #[test]
    fn npy_header_is_64_byte_aligned() {
        let bytes = npy_bytes_f32(&[784, 128], &[]);
        let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(bytes[10 + hl - 1], b'\n');
    }

    #[test]
    fn lying_header_is_refused_without_allocating() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (9999999999,), }\n";
        let mut fake = b"\x93NUMPY\x01\x00".to_vec();
        fake.extend_from_slice(&(header.len() as u16).to_le_bytes());
        fake.extend_from_slice(header.as_bytes());
        fake.extend_from_slice(&[0u8; 16]);
        let err = read_npy_member(&mut std::io::Cursor::new(fake), "x.npy").unwrap_err();
        assert!(
            err.message.contains("member x.npy: shape [9999999999] (9999999999 values) is over the budget"),
            "{err}"
        );
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }\n";
        let mut fake = b"\x93NUMPY\x01\x00".to_vec();
        fake.extend_from_slice(&(header.len() as u16).to_le_bytes());
        fake.extend_from_slice(header.as_bytes());
        fake.extend_from_slice(&[0u8; 16]);
        let err = read_npy_member(&mut std::io::Cursor::new(fake), "x.npy").unwrap_err();
        assert!(err.message.contains("header promises 4000 bytes"), "{err}");
    }

    #[test]
    fn object_arrays_are_refused() {
        let err = parse_descr("|O").unwrap_err();
        assert!(err.message.contains("never unpickles"));
        assert_eq!(err.kind, MemberErrorKind::Pickled);
    }

    #[test]
    fn f16_decodes() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
    }
}
