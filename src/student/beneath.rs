//! Files in the folders the student's code could write to (its copy of the repository, the
//! workers' outputs), opened by fmtool without ever following a link. The student's code runs
//! inside the sandbox, where a link such as `test_acc.txt -> /home/runner/x` means something else
//! than it does to fmtool outside: were fmtool to follow it, its own write of `test_acc.txt`
//! would land in the grader's files. So every component of the path is opened relative to the
//! folder with `O_NOFOLLOW`: a link anywhere on the way is refused, reported as [`Planted`], and
//! is a finding of the repository's.

use std::path::{Component, Path};

/// A link fmtool met where it expected a file or folder of the student's copy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Planted {
    /// The path relative to the folder, as the student's code sees it (`test_acc.txt`).
    pub name: String,
    /// Where the link points (as the sandbox would read it), for the finding.
    pub target: String,
}

/// Why a file could not be opened beneath the folder.
#[derive(Debug)]
pub enum Refused {
    /// A link on the way.
    Link(Planted),
    /// Not there, not a regular file, too large, or not a plain relative name.
    Other(String),
}

/// The plain components of `name` (no `..`, no root, not empty).
fn components(name: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = Path::new(name)
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then_some(parts)
}

#[cfg(unix)]
mod imp {
    use super::*;
    use std::ffi::CString;
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};

    fn cstr(s: &str) -> Result<CString, Refused> {
        CString::new(s).map_err(|_| Refused::Other(format!("{s}: a name with a NUL byte")))
    }

    fn open_at(dir: Option<&OwnedFd>, path: &CString, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
        // SAFETY: openat with a valid NUL-terminated path and a directory fd we own.
        let fd = unsafe { libc::openat(at, path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn link_target(dir: &OwnedFd, name: &CString) -> String {
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 4096];
        // SAFETY: readlinkat into a buffer of the given length.
        let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return String::from("?");
        }
        buf.truncate(n as usize);
        crate::text::clip(&String::from_utf8_lossy(&buf), 200)
    }

    fn is_link(dir: &OwnedFd, name: &CString) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: fstatat into a zeroed stat buffer, without following the last component.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
                && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
        }
    }

    /// The folder holding `parts`' last component, opened component by component without
    /// following links.
    fn parent(root: &Path, parts: &[&str], name: &str) -> Result<OwnedFd, Refused> {
        let root_c = CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| Refused::Other(format!("{}: a name with a NUL byte", root.display())))?;
        let mut dir = open_at(None, &root_c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| Refused::Other(format!("{}: {e}", root.display())))?;
        for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
            let c = cstr(part)?;
            match open_at(Some(&dir), &c, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
                Ok(d) => dir = d,
                Err(_) if is_link(&dir, &c) => {
                    return Err(Refused::Link(Planted { name: parts[..=i].join("/"), target: link_target(&dir, &c) }));
                }
                Err(e) => return Err(Refused::Other(format!("{name}: {e}"))),
            }
        }
        Ok(dir)
    }

    pub fn read(root: &Path, name: &str, budget: u64) -> Result<Vec<u8>, Refused> {
        let parts = components(name).ok_or_else(|| Refused::Other(format!("{name}: not a plain relative name")))?;
        let dir = parent(root, &parts, name)?;
        let last = cstr(parts[parts.len() - 1])?;
        let fd = match open_at(Some(&dir), &last, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0) {
            Ok(fd) => fd,
            Err(_) if is_link(&dir, &last) => {
                return Err(Refused::Link(Planted { name: name.to_string(), target: link_target(&dir, &last) }));
            }
            Err(e) => return Err(Refused::Other(format!("{name}: {e}"))),
        };
        let file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(|e| Refused::Other(format!("{name}: {e}")))?;
        if !meta.is_file() {
            return Err(Refused::Other(format!("{name}: not a regular file")));
        }
        let mut out = Vec::new();
        file.take(budget + 1).read_to_end(&mut out).map_err(|e| Refused::Other(format!("{name}: {e}")))?;
        if out.len() as u64 > budget {
            return Err(Refused::Other(format!("{name}: more than {budget} bytes")));
        }
        Ok(out)
    }

    /// Replaces `name` with a new regular file holding `bytes`, as `os.remove` then `open(name,
    /// "w")` does in test_inference: whatever was there (a link included, which is reported) is
    /// removed, never written through.
    pub fn replace(root: &Path, name: &str, bytes: &[u8]) -> Result<Option<Planted>, Refused> {
        use std::os::fd::AsRawFd;
        let parts = components(name).ok_or_else(|| Refused::Other(format!("{name}: not a plain relative name")))?;
        let dir = parent(root, &parts, name)?;
        let last = cstr(parts[parts.len() - 1])?;
        let planted =
            is_link(&dir, &last).then(|| Planted { name: name.to_string(), target: link_target(&dir, &last) });
        // SAFETY: unlinkat of a name in a directory fd we own; a missing name is fine.
        unsafe {
            libc::unlinkat(dir.as_raw_fd(), last.as_ptr(), 0);
        }
        let fd = open_at(Some(&dir), &last, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o644)
            .map_err(|e| Refused::Other(format!("{name}: {e}")))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).map_err(|e| Refused::Other(format!("{name}: {e}")))?;
        Ok(planted)
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    fn plain(root: &Path, name: &str) -> Result<std::path::PathBuf, Refused> {
        let parts = components(name).ok_or_else(|| Refused::Other(format!("{name}: not a plain relative name")))?;
        let mut p = root.to_path_buf();
        for part in parts {
            p.push(part);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Refused::Link(Planted { name: name.to_string(), target: String::from("?") }));
            }
        }
        Ok(p)
    }

    pub fn read(root: &Path, name: &str, budget: u64) -> Result<Vec<u8>, Refused> {
        let p = plain(root, name)?;
        crate::fsguard::read(&p, budget).map_err(|e| Refused::Other(e.message))
    }

    pub fn replace(root: &Path, name: &str, bytes: &[u8]) -> Result<Option<Planted>, Refused> {
        let p = plain(root, name)?;
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, bytes).map_err(|e| Refused::Other(format!("{name}: {e}")))?;
        Ok(None)
    }
}

/// The bytes of the regular file `name` beneath `root` (at most `budget`), no link followed.
pub fn read(root: &Path, name: &str, budget: u64) -> Result<Vec<u8>, Refused> {
    imp::read(root, name, budget)
}

/// Writes `bytes` to `name` beneath `root` as a new regular file, removing what was there; a link
/// that was there is returned, to be reported.
pub fn replace(root: &Path, name: &str, bytes: &[u8]) -> Result<Option<Planted>, Refused> {
    imp::replace(root, name, bytes)
}

/// The links under `root` (at most `max`, at most 16 folders deep) that point out of it: absolute
/// targets, or relative ones that climb above `root`. Such a link in a student's copy was planted
/// for a program outside the sandbox to follow.
pub fn links_out(root: &Path, max: usize) -> Vec<Planted> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Planted>, max: usize, seen: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            *seen += 1;
            if out.len() >= max || *seen > 100_000 {
                return;
            }
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_symlink() {
                let Ok(target) = std::fs::read_link(&p) else { continue };
                let rel = p.strip_prefix(root).unwrap_or(&p);
                if escapes(rel, &target) {
                    out.push(Planted {
                        name: rel.to_string_lossy().into_owned(),
                        target: crate::text::clip(&target.to_string_lossy(), 200),
                    });
                }
            } else if t.is_dir() && depth < 16 {
                walk(root, &p, depth + 1, out, max, seen);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, 0, &mut out, max, &mut 0);
    out
}

/// Whether a link at `at` (relative to the root) with `target` points out of the root.
fn escapes(at: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = at.components().count() as isize - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_and_replaced_beneath_its_folder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a.txt"), "0.86").unwrap();
        assert_eq!(read(d.path(), "sub/a.txt", 100).unwrap(), b"0.86");
        assert!(matches!(read(d.path(), "sub/a.txt", 2), Err(Refused::Other(_))));
        assert!(matches!(read(d.path(), "../x", 100), Err(Refused::Other(_))));
        assert_eq!(replace(d.path(), "sub/a.txt", b"0.9").unwrap(), None);
        assert_eq!(std::fs::read(d.path().join("sub/a.txt")).unwrap(), b"0.9");
    }

    /// A link planted where fmtool reads or writes is neither read through nor written through:
    /// the file it points at is unchanged, and the link is reported with its target.
    #[test]
    fn a_planted_link_is_never_followed_and_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let copy = d.path().join("repo");
        std::fs::create_dir(&copy).unwrap();
        std::os::unix::fs::symlink(&victim, copy.join("test_acc.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), copy.join("model")).unwrap();
        match read(&copy, "test_acc.txt", 100) {
            Err(Refused::Link(p)) => assert_eq!(p.target, victim.display().to_string()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(read(&copy, "model/victim.txt", 100), Err(Refused::Link(p)) if p.name == "model"));
        let planted = replace(&copy, "test_acc.txt", b"0.95").unwrap().expect("the link is reported");
        assert_eq!(planted.name, "test_acc.txt");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(copy.join("test_acc.txt")).unwrap(), "0.95");
        assert!(matches!(replace(&copy, "model/victim.txt", b"x"), Err(Refused::Link(_))));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let found = links_out(&copy, 10);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "model");
    }

    #[test]
    fn links_inside_the_folder_do_not_escape_it() {
        assert!(!escapes(Path::new("a/b"), Path::new("../c")));
        assert!(escapes(Path::new("a/b"), Path::new("../../c")));
        assert!(escapes(Path::new("b"), Path::new("/etc/passwd")));
        assert!(!escapes(Path::new("b"), Path::new("c/d")));
    }
}
