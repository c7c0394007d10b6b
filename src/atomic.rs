//! Writes output files whole or not at all: the bytes go into a temporary file in the target's
//! directory, which is then renamed over the target, so an error or a crash never leaves a
//! half-written file where a student expects a result.

use crate::err;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically. With `overwrite` false an existing `path` is an error
/// (checked again at the rename, so a file created meanwhile is not clobbered either).
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    check_target(path, overwrite)?;
    let dir = parent(path);
    let mut tmp = temp_file_in(dir, ".fmtool-")?;
    tmp.write_all(bytes).map_err(|e| Error::io("write", path, &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io("write", path, &e))?;
    let persisted = if overwrite { tmp.persist(path) } else { tmp.persist_noclobber(path) };
    // On failure the temporary file is dropped with the error, which deletes it.
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exists(path)
        } else {
            Error::io("write", path, &e.error)
        }
    })?;
    Ok(())
}

/// A temporary file in `dir` (named `<prefix>....tmp`) that becomes an output by a rename.
/// NamedTempFile is created 0600; this asks for the mode an ordinary file gets (0666 less the
/// umask), so the result is as readable as if it had been written directly.
pub fn temp_file_in(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io("create a temporary file in", dir, &e))
}

/// Checks that `path` can be written: its directory exists, it is not a directory, and it does not
/// exist unless `overwrite`. Commands call this before long work so they fail early.
pub fn check_target(path: &Path, overwrite: bool) -> Result<()> {
    let dir = parent(path);
    if path.is_dir() {
        return Err(err!("cannot write {}: it is a directory", path.display()));
    }
    if !dir.is_dir() {
        return Err(err!("cannot write {}: the directory {} does not exist", path.display(), dir.display()));
    }
    if !overwrite && path.exists() {
        return Err(exists(path));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn exists(path: &Path) -> Error {
    err!("{} already exists", path.display()).with_hint("pass --force to replace it, or choose another file name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".fmtool-"))
            .collect()
    }

    #[test]
    fn writes_refuses_and_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_atomic(&p, b"one", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let e = write_atomic(&p, b"two", false).unwrap_err();
        assert!(e.message.ends_with("a.npy already exists"), "{}", e.message);
        assert!(e.hint.unwrap().contains("--force"));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_and_directory_target_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(&dir.path().join("no/such/x.npy"), b"x", true).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let e = write_atomic(dir.path(), b"x", true).unwrap_err();
        assert!(e.message.contains("is a directory"), "{}", e.message);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn result_is_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        write_atomic(&p, b"x", false).unwrap();
        // Whatever the umask, the owner can read and write, and the mode is not the 0600 of a
        // temporary file unless the umask itself says so.
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        let umask_allows_group_read = {
            let probe = dir.path().join("probe");
            std::fs::write(&probe, b"").unwrap();
            std::fs::metadata(&probe).unwrap().permissions().mode() & 0o040 != 0
        };
        assert_eq!(mode & 0o040 != 0, umask_allows_group_read);
    }
}
