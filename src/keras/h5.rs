//! HDF5 access for Keras files, on the pure-Rust `hdf5-reader` crate: string-list attributes
//! (fixed, variable-length, chunked into `name0`, `name1`, ...; an empty list stored as an empty
//! float array), and float arrays read as float32.

use crate::err;
use crate::error::{Error, Result};
use hdf5_reader::Hdf5File;
use hdf5_reader::group::Group;
use ndarray::ArrayD;

/// The 8-byte signature at the start of every HDF5 file (without a user block).
pub const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Opens an HDF5 file from bytes; `what` names it in messages.
pub fn open(bytes: &[u8], what: &str) -> Result<Hdf5File> {
    Hdf5File::from_bytes(bytes)
        .map_err(|e| err!("{what} is not a readable HDF5 file ({e}); it may be truncated or corrupt"))
}

pub fn root(file: &Hdf5File, what: &str) -> Result<Group> {
    file.root_group().map_err(|e| err!("{what}: cannot read the root group ({e}); the file may be corrupt"))
}

/// Whether `group` has an attribute called `name`.
pub fn has_attr(group: &Group, name: &str) -> bool {
    group.attributes().map(|a| a.iter().any(|a| a.name == name)).unwrap_or(false)
}

/// A string attribute (Keras' `model_config`, `keras_version`), or `None` when absent.
pub fn attr_string(group: &Group, name: &str) -> Result<Option<String>> {
    if !has_attr(group, name) {
        return Ok(None);
    }
    let a = group.attribute(name).map_err(|e| err!("attribute {name}: {e}"))?;
    match a.read_string() {
        Ok(s) => Ok(Some(s)),
        Err(_) => {
            let list = a.read_strings().map_err(|e| err!("attribute {name} is not a string: {e}"))?;
            Ok(list.into_iter().next())
        }
    }
}

/// A list-of-strings attribute such as `layer_names` or `weight_names`, reassembled from chunks
/// (`layer_names0`, `layer_names1`, ...) when Keras had to split it. An empty list is stored by
/// h5py as an empty float64 array. `None` when the attribute is absent.
pub fn attr_string_list(group: &Group, name: &str) -> Result<Option<Vec<String>>> {
    let read_one = |n: &str| -> Result<Vec<String>> {
        let a = group.attribute(n).map_err(|e| err!("attribute {n}: {e}"))?;
        if a.num_elements().unwrap_or(1) == 0 {
            return Ok(Vec::new());
        }
        a.read_strings().map_err(|e| err!("attribute {n} is not a list of names: {e}"))
    };
    if has_attr(group, name) {
        return read_one(name).map(Some);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while has_attr(group, &format!("{name}{i}")) {
        out.extend(read_one(&format!("{name}{i}"))?);
        i += 1;
    }
    Ok(if i == 0 { None } else { Some(out) })
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

/// Reads the dataset at `path` below `group` as float32 (float64 data is narrowed, as Keras does
/// when it loads weights into float32 variables).
pub fn read_f32(group: &Group, path: &str) -> Result<ArrayD<f32>> {
    let (dir, leaf) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let g = subgroup(group, dir)?;
    let ds = g.dataset(leaf).map_err(|e| err!("no dataset {path:?} ({e})"))?;
    match ds.read_array::<f32>() {
        Ok(a) => Ok(a),
        Err(first) => {
            // float64 arrays, and integer ones such as Normalization's sample count.
            if let Ok(a) = ds.read_array::<f64>() {
                return Ok(a.mapv(|v| v as f32));
            }
            if let Ok(a) = ds.read_array::<i64>() {
                return Ok(a.mapv(|v| v as f32));
            }
            if let Ok(a) = ds.read_array::<i32>() {
                return Ok(a.mapv(|v| v as f32));
            }
            Err(Error::new(format!("dataset {path:?} cannot be read as numbers ({first})")))
        }
    }
}

/// The names of the datasets directly in a group, in numeric order when they are numbers
/// (`.keras` stores a layer's variables as `vars/0`, `vars/1`, ...).
pub fn numbered_datasets(group: &Group) -> Result<Vec<String>> {
    let (_, mut names) = group.member_names().map_err(|e| err!("cannot list the group ({e})"))?;
    names.sort_by_key(|n| (n.parse::<usize>().unwrap_or(usize::MAX), n.clone()));
    Ok(names)
}
