//! Opening a user's file for reading: only a regular file (or a symlink to one) is read, a FIFO,
//! socket or device is refused by name without being opened for reading (opening a FIFO blocks),
//! and a file larger than the reader's budget is refused before a byte is read. Every reader
//! (model JSON and npz, Keras files, IDX data, pictures) goes through here.

use crate::err;
use crate::error::{Error, Result};
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// What kind of thing a non-regular file is, as a user would call it.
fn kind(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    if ft.is_file() { "a file" } else { "not a regular file" }
}

/// Refuses anything that is not a regular file, or larger than `budget` bytes.
fn check(path: &Path, meta: &Metadata, budget: u64, via_link: bool) -> Result<()> {
    let shown = path.display();
    if !meta.is_file() {
        let link = if via_link { "a symbolic link to " } else { "" };
        return Err(err!("{shown} is {link}{}, not a file", kind(meta)).with_hint(
            "replace it with the regular file fmtool expects (git can store symbolic links; check it out as a file)",
        ));
    }
    if meta.len() > budget {
        return Err(err!(
            "{shown} is {} bytes, more than the {budget} bytes fmtool reads for this kind of file; is it the right file?",
            meta.len()
        ));
    }
    Ok(())
}

/// Opens `path` for reading after checking that it is (or links to) a regular file of at most
/// `budget` bytes. Returns the open file and its length.
pub fn open(path: &Path, budget: u64) -> Result<(File, u64)> {
    let lmeta = std::fs::symlink_metadata(path).map_err(|e| Error::io("read", path, &e))?;
    let via_link = lmeta.file_type().is_symlink();
    let meta = if via_link { std::fs::metadata(path).map_err(|e| Error::io("read", path, &e))? } else { lmeta };
    check(path, &meta, budget, via_link)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // The path may have been swapped for a FIFO since the check; O_NONBLOCK keeps open() from
        // waiting for a writer, and the fstat below refuses it.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io("read", path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, &e))?;
    check(path, &meta, budget, via_link)?;
    Ok((file, meta.len()))
}

/// Reads the whole of `path` (a regular file of at most `budget` bytes); never more than
/// `budget` bytes even if the file grows while it is read.
pub fn read(path: &Path, budget: u64) -> Result<Vec<u8>> {
    let (file, len) = open(path, budget)?;
    let mut out = Vec::with_capacity(len as usize);
    file.take(budget + 1).read_to_end(&mut out).map_err(|e| Error::io("read", path, &e))?;
    if out.len() as u64 > budget {
        return Err(err!("{} grew past {budget} bytes while it was read", path.display()));
    }
    Ok(out)
}

/// The metadata of `path` (following links), with an error that names the file.
pub fn metadata(path: &Path) -> Result<Metadata> {
    std::fs::metadata(path).map_err(|e| Error::io("read", path, &e))
}

/// One entry of a folder: its name, and whether it is a folder or a regular file (following
/// links); anything else (a FIFO, a socket, a device, a dangling link) is neither.
pub struct Entry {
    pub name: std::ffi::OsString,
    pub is_dir: bool,
    pub is_file: bool,
}

/// The entries of the folder `dir`, sorted by name; `None` when there is no such folder.
pub fn list_dir(dir: &Path) -> Result<Option<Vec<Entry>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read the folder", dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read the folder", dir, &e))?;
        let meta = std::fs::metadata(entry.path()).ok();
        out.push(Entry {
            name: entry.file_name(),
            is_dir: meta.as_ref().is_some_and(|m| m.is_dir()),
            is_file: meta.as_ref().is_some_and(|m| m.is_file()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(out))
}

/// Budgets, in bytes, for each kind of file fmtool reads. A Fashion-MNIST model is a few MB; these
/// leave room for any model a student could train for it, and refuse the wrong file at once.
pub mod budget {
    /// `fashion_mnist.json` and other architecture JSON.
    pub const JSON: u64 = 16 << 20;
    /// An npz of weights (the per-member and per-file value budgets in `model::npz` bound it too).
    pub const NPZ: u64 = 256 << 20;
    /// A Keras `.h5` or `.keras` file.
    pub const KERAS: u64 = 256 << 20;
    /// One IDX data file (Fashion-MNIST's training images are 47 MB raw).
    pub const IDX: u64 = 128 << 20;
    /// A picture for `predict`.
    pub const PICTURE: u64 = 64 << 20;
    /// A student's Python or configuration file that fmtool reads (model_test.py, conftest.py,
    /// pytest.ini): the course's are a few kilobytes.
    pub const SOURCE: u64 = 1 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, b"[]").unwrap();
        assert_eq!(read(&p, 10).unwrap(), b"[]");
        let e = read(&p, 1).unwrap_err();
        assert!(e.message.contains("is 2 bytes, more than the 1 bytes"), "{}", e.message);
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_and_links_to_them_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("fashion_mnist.npz");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read(&link, 1 << 20).unwrap_err();
        assert!(
            e.message.ends_with("fashion_mnist.npz is a symbolic link to a character device, not a file"),
            "{}",
            e.message
        );
        let fifo = dir.path().join("fifo.npz");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read(&fifo, 1 << 20).unwrap_err();
        assert!(e.message.ends_with("fifo.npz is a FIFO, not a file"), "{}", e.message);
        let e = read(dir.path(), 1 << 20).unwrap_err();
        assert!(e.message.contains("is a directory, not a file"), "{}", e.message);
    }
}
