//! HDF5 access for Keras files, on the pure-Rust `hdf5-reader` crate: string and string-list
//! attributes (fixed or variable length, chunked into `name0`, `name1`, ... when Keras had to split
//! them, an empty list stored as an empty float array), and numeric datasets read as float32.

use crate::err;
use crate::error::Result;
use hdf5_reader::group::Group;
use hdf5_reader::{Attribute, ByteOrder, Datatype, Hdf5File, OpenOptions};
use ndarray::{ArrayD, IxDyn};

/// The 8-byte signature at the start of every HDF5 file (without a user block).
pub const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Whether `bytes` hold an HDF5 file: the signature at offset 0, or after a user block of 512,
/// 1024, 2048, ... bytes (where the HDF5 library looks for it).
pub fn has_signature(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    loop {
        if bytes.get(at..at + SIGNATURE.len()) == Some(SIGNATURE) {
            return true;
        }
        at = if at == 0 { 512 } else { at * 2 };
        if at >= bytes.len() {
            return false;
        }
    }
}

/// At most this many values in one dataset: no Fashion-MNIST weight comes near it, and it keeps
/// one array under 64 MB as float32 (a never-written dataset is materialized from its fill value).
pub const MAX_DATASET_VALUES: usize = 16 << 20;
/// At most this many values in all datasets read from one file.
pub const MAX_FILE_VALUES: usize = 32 << 20;

thread_local! {
    /// What is left of the value budget of the file being read. Each file is read on its own
    /// guarded thread ([`super::guard::run`]), and [`open`] resets it.
    static VALUES_LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_FILE_VALUES) };
}

/// Opens an HDF5 file from bytes; `what` names it in messages. No single read may allocate more
/// than a generous multiple of the file's size: Keras stores weights uncompressed, so a dataset
/// claiming more is corrupt, and refusing it beats an allocation failure.
pub fn open(bytes: Vec<u8>, what: &str) -> Result<Hdf5File> {
    VALUES_LEFT.with(|v| v.set(MAX_FILE_VALUES));
    let len = bytes.len() as u64;
    let limit = bytes.len().saturating_mul(16).max(256 << 20);
    let options = OpenOptions::default().with_max_read_bytes(limit).with_max_chunk_bytes(limit.min(256 << 20));
    let file = Hdf5File::from_vec_with_options(bytes, options)
        .map_err(|e| err!("{what} is not a readable HDF5 file ({e}); it may be truncated or corrupt"))?;
    // Like the HDF5 library, refuse a file shorter than its superblock says: the missing part
    // may hold nothing fmtool reads (optimizer state), but the file is damaged.
    let sb = file.superblock();
    let end = sb.base_address.saturating_add(sb.eof_address);
    if end > len {
        return Err(err!("{what} is truncated: it has {len} bytes, but its HDF5 header says it ends at byte {end}")
            .with_hint(
                "copy or download the file again, or save the model again with model.save(\"fashion_mnist.h5\")",
            ));
    }
    Ok(file)
}

pub fn root(file: &Hdf5File, what: &str) -> Result<Group> {
    file.root_group().map_err(|e| err!("{what}: cannot read the root group ({e}); the file may be corrupt"))
}

/// The attributes of a group, decoded once (`hdf5-reader` decodes all of them on every lookup).
pub struct Attrs(Vec<Attribute>);

impl Attrs {
    pub fn of(group: &Group) -> Result<Attrs> {
        group.attributes().map(Attrs).map_err(|e| err!("cannot read the attributes of {:?} ({e})", group.name()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a.name == name)
    }

    fn get(&self, name: &str) -> Option<&Attribute> {
        self.0.iter().find(|a| a.name == name)
    }

    /// A string attribute (Keras' `model_config`, `keras_version`), or `None` when absent.
    pub fn string(&self, name: &str) -> Result<Option<String>> {
        let Some(a) = self.get(name) else { return Ok(None) };
        match a.read_string() {
            Ok(s) => Ok(Some(s)),
            Err(_) => {
                let list = a.read_strings().map_err(|e| err!("attribute {name} is not a string ({e})"))?;
                Ok(list.into_iter().next())
            }
        }
    }

    /// A list-of-strings attribute such as `layer_names` or `weight_names`, reassembled from the
    /// chunks `name0`, `name1`, ... that Keras writes when the list exceeds HDF5's 64 KB attribute
    /// limit. h5py stores an empty list as an empty float64 array. `None` when absent.
    pub fn string_list(&self, name: &str) -> Result<Option<Vec<String>>> {
        let read_one = |a: &Attribute| -> Result<Vec<String>> {
            if a.num_elements().unwrap_or(1) == 0 {
                return Ok(Vec::new());
            }
            a.read_strings().map_err(|e| err!("attribute {} is not a list of names ({e})", a.name))
        };
        if let Some(a) = self.get(name) {
            return read_one(a).map(Some);
        }
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(a) = self.get(&format!("{name}{i}")) {
            out.extend(read_one(a)?);
            i += 1;
        }
        Ok(if i == 0 { None } else { Some(out) })
    }
}

/// Follows a `/`-separated path of groups below `group`.
pub fn subgroup(group: &Group, path: &str) -> Result<Group> {
    let mut g = group.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        g = g.group(part).map_err(|e| err!("no group {part:?} on the way to {path:?} ({e})"))?;
    }
    Ok(g)
}

/// Whether a child group exists.
pub fn has_group(group: &Group, name: &str) -> bool {
    group.member_names().map(|(groups, _)| groups.iter().any(|g| g == name)).unwrap_or(false)
}

/// Reads the dataset at `path` below `group` as float32, as Keras does when it loads weights into
/// float32 variables (float64 is rounded to nearest, integers such as Normalization's sample count
/// are converted, float16 is widened).
pub fn read_f32(group: &Group, path: &str) -> Result<ArrayD<f32>> {
    let (dir, leaf) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let g = subgroup(group, dir)?;
    let ds = g.dataset(leaf).map_err(|e| err!("no dataset {path:?} ({e})"))?;
    let shape: Vec<usize> = ds
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err!("dataset {path:?} has an impossible shape")))
        .collect::<Result<_>>()?;
    // The declared size is checked before anything is read or allocated.
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    let left = VALUES_LEFT.with(|v| v.get());
    if count > MAX_DATASET_VALUES {
        return Err(err!(
            "dataset {path:?} has shape {shape:?} ({count} values), over the budget of {MAX_DATASET_VALUES} values for one array; no Fashion-MNIST weight is that large"
        ));
    }
    if count > left {
        return Err(err!(
            "dataset {path:?} has shape {shape:?} ({count} values), over what is left of the file's budget of {MAX_FILE_VALUES} values; the weights together are far larger than any Fashion-MNIST model"
        ));
    }
    VALUES_LEFT.with(|v| v.set(left - count));
    let bad = |e: &dyn std::fmt::Display| err!("dataset {path:?} cannot be read ({e})");
    if let Datatype::FloatingPoint { size: 4, .. } = ds.dtype() {
        return ds.read_array::<f32>().map_err(|e| bad(&e));
    }
    let values: Vec<f32> = match ds.dtype().clone() {
        Datatype::FloatingPoint { size, byte_order } => {
            let raw = ds.read_raw_bytes().map_err(|e| bad(&e))?;
            match size {
                8 => raw.chunks_exact(8).map(|c| f64::from_bits(word(c, byte_order)) as f32).collect(),
                2 => raw.chunks_exact(2).map(|c| f16_to_f32(word(c, byte_order) as u16)).collect(),
                _ => return Err(err!("dataset {path:?} holds {}-byte floats, which fmtool cannot read", size)),
            }
        }
        Datatype::FixedPoint { size, signed, byte_order } if matches!(size, 1 | 2 | 4 | 8) => {
            let raw = ds.read_raw_bytes().map_err(|e| bad(&e))?;
            let bits = 8 * size as u32;
            raw.chunks_exact(size as usize)
                .map(|c| {
                    let w = word(c, byte_order);
                    if signed { (((w << (64 - bits)) as i64) >> (64 - bits)) as f32 } else { w as f32 }
                })
                .collect()
        }
        other => return Err(err!("dataset {path:?} does not hold numbers ({other:?})")),
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values)
        .map_err(|_| err!("dataset {path:?}: its data does not fill its shape"))
}

/// An unsigned word of 1 to 8 bytes in the given byte order.
fn word(bytes: &[u8], order: ByteOrder) -> u64 {
    let mut w = 0u64;
    match order {
        ByteOrder::BigEndian => bytes.iter().for_each(|&b| w = (w << 8) | b as u64),
        _ => bytes.iter().rev().for_each(|&b| w = (w << 8) | b as u64),
    }
    w
}

/// IEEE half precision to single precision, exactly (every half value is a float32).
fn f16_to_f32(h: u16) -> f32 {
    crate::model::npz::f16_to_f64(h) as f32
}

/// The names of the datasets directly in a group, in numeric order when they are numbers
/// (`.keras` stores a layer's variables as `vars/0`, `vars/1`, ...).
pub fn numbered_datasets(group: &Group) -> Result<Vec<String>> {
    let (_, mut names) = group.member_names().map_err(|e| err!("cannot list the group ({e})"))?;
    names.sort_by_key(|n| (n.parse::<usize>().unwrap_or(usize::MAX), n.clone()));
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_widen_exactly() {
        for (h, f) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x7bff, 65504.0), (0x0001, 2f32.powi(-24)), (0, 0.0)] {
            assert_eq!(f16_to_f32(h), f, "{h:#x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }

    #[test]
    fn words_follow_the_byte_order() {
        assert_eq!(word(&[1, 2], ByteOrder::LittleEndian), 0x0201);
        assert_eq!(word(&[1, 2], ByteOrder::BigEndian), 0x0102);
    }
}
