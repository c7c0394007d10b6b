//! `fmtool hook install`: writes `.git/hooks/pre-commit`, a POSIX shell script that runs
//! `fmtool check` (and optionally `fmtool score --min-accuracy`) on the model directories whose
//! files are staged, for users without the pre-commit framework.

use crate::cli::HookInstallArgs;
use crate::err;
use crate::error::{Error, Result};
use crate::report::Human;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Serialize)]
pub struct HookReport {
    pub path: String,
    pub replaced: bool,
    pub min_accuracy: Option<f64>,
}

/// The hook script. It checks only the model directories touched by the commit.
pub fn script(min_accuracy: Option<f64>) -> String {
    let score = match min_accuracy {
        Some(x) => format!(
            "  fmtool score --model \"$dir\" --min-accuracy {x} >/dev/null || {{ echo \"fmtool: $dir scores below {x}\" >&2; status=1; }}\n"
        ),
        None => String::new(),
    };
    format!(
        r#"#!/bin/sh
# Installed by `fmtool hook install`: stops a commit whose Fashion-MNIST model fmtool finds broken.
# Remove this file to disable it, or commit with --no-verify to skip it once.
if ! command -v fmtool >/dev/null 2>&1; then
  echo "pre-commit: fmtool is not on PATH; install it (cargo install --path <fmtool checkout>) or delete .git/hooks/pre-commit" >&2
  exit 1
fi
files=$(git diff --cached --name-only --diff-filter=ACMR | grep -E '(^|/)fashion_mnist\.(json|npz|h5)$')
[ -z "$files" ] && exit 0
status=0
for dir in $(for f in $files; do dirname "$f"; done | sort -u); do
  fmtool check "$dir" || status=1
{score}done
exit $status
"#
    )
}

/// The hooks directory of the git repository containing `repo`.
fn hooks_dir(repo: &Path) -> Result<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(repo)
        .output()
        .map_err(|e| err!("cannot run git: {e}").with_hint("install git, or run from inside the repository"))?;
    if !out.status.success() {
        return Err(err!("{} is not inside a git repository", repo.display())
            .with_hint("run `git init` first, or pass --repo DIR"));
    }
    let rel = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(repo.join(rel))
}

pub fn install(args: &HookInstallArgs) -> Result<HookReport> {
    if let Some(x) = args.min_accuracy
        && !(0.0..=1.0).contains(&x)
    {
        return Err(err!("--min-accuracy {x} is not between 0 and 1"));
    }
    let dir = hooks_dir(&args.repo)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, &e))?;
    let path = dir.join("pre-commit");
    let replaced = path.exists();
    if replaced && !args.force {
        return Err(err!("{} already exists; fmtool does not replace a hook it did not write", path.display())
            .with_hint("pass --force to replace it, or add `fmtool check model` to the existing hook yourself"));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".fmtool-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io("write a temporary file in", &dir, &e))?;
    tmp.write_all(script(args.min_accuracy).as_bytes()).map_err(|e| Error::io("write", tmp.path(), &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("make executable", tmp.path(), &e))?;
    }
    tmp.persist(&path).map_err(|e| Error::io("write", &path, &e.error))?;
    Ok(HookReport { path: path.display().to_string(), replaced, min_accuracy: args.min_accuracy })
}

impl Human for HookReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let verb = if self.replaced { "replaced" } else { "installed" };
        writeln!(
            w,
            "{verb} {}: every commit that stages fashion_mnist.json/.npz/.h5 runs `fmtool check` on its directory",
            self.path
        )?;
        if let Some(x) = self.min_accuracy {
            writeln!(w, "and `fmtool score --min-accuracy {x}`")?;
        }
        Ok(())
    }
}
