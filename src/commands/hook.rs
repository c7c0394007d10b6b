//! `fmtool hook install`: writes the repository's `pre-commit` hook, a POSIX shell script that runs
//! `fmtool check` (and optionally `fmtool score --min-accuracy`) when a commit stages a file that
//! decides the grade, for users without the pre-commit framework (whose hooks are in
//! `.pre-commit-hooks.yaml`).

use crate::cli::HookInstallArgs;
use crate::err;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A line every hook fmtool writes contains, to recognise it later.
pub const MARKER: &str = "written by `fmtool hook install`";

/// The files whose change the hooks check, as a Python regular expression (the `files:` of
/// `.pre-commit-hooks.yaml` and `hooks/pre-commit-wheel.yaml`, which a test keeps equal): the
/// model, and the student repository's files that decide the grade besides it (nn_predict.py,
/// model_test.py, utils/, the workflows).
pub const FILES_REGEX: &str = r"(^|/)fashion_mnist\.(json|npz|h5)$|\.keras$|(^|/)(nn_predict|model_test)\.py$|(^|/)utils/[^/]+\.py$|^\.github/workflows/[^/]+\.ya?ml$";

/// The same files as git pathspecs, which the hook hands to `git diff -z` (no regex over a
/// newline-separated list, which a file name with a newline would break).
pub const PATHSPECS: &str = "':(glob)**/fashion_mnist.json' ':(glob)**/fashion_mnist.npz' ':(glob)**/fashion_mnist.h5' ':(glob)**/*.keras' \
':(glob)**/nn_predict.py' ':(glob)**/model_test.py' ':(glob)**/utils/*.py' \
':(glob).github/workflows/*.yml' ':(glob).github/workflows/*.yaml'";

#[derive(Debug, serde::Serialize)]
pub struct HookReport {
    pub path: String,
    /// An existing hook was replaced (`--force`).
    pub replaced: bool,
    pub min_accuracy: Option<f64>,
    /// Whether `fmtool` is on PATH now.
    pub on_path: bool,
    /// The binary the hook falls back to when `fmtool` is not on PATH.
    pub fallback: Option<String>,
}

/// Quotes a string for a POSIX shell: `'it'\''s'`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook script. `fallback` is the fmtool binary to use when none is on PATH.
pub fn script(min_accuracy: Option<f64>, fallback: Option<&str>) -> String {
    let min = min_accuracy.map(|x| x.to_string()).unwrap_or_default();
    let fallback = fallback.map(sh_quote).unwrap_or_else(|| "''".into());
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"#!/bin/sh
# fmtool pre-commit hook, {MARKER} (fmtool {version}).
# Runs `fmtool check` when a commit stages a file that decides the grade (the model's
# fashion_mnist.json, .npz, .h5 and .keras files; nn_predict.py, model_test.py, utils/*.py and the
# workflows in .github/workflows), on the repository as it will be committed, and `fmtool score
# --min-accuracy` when set below. Skip it once with `git commit --no-verify`; remove this file to
# turn it off.
min_accuracy='{min}'
fallback={fallback}

cd "$(git rev-parse --show-toplevel)" || exit 1
tmp=$(mktemp -d "${{TMPDIR:-/tmp}}/fmtool-hook.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' HUP INT TERM

# File names travel NUL-separated (-z) from git to fmtool, never through a shell variable, so a
# name with a quote, a backslash, a tab or a newline is checked like any other; git's pathspecs
# pick the files; `--` keeps a folder named -x or --format=json a path.
git diff --cached --name-only -z --diff-filter=ACMR -- {PATHSPECS} >"$tmp/.staged" || exit 1
[ -s "$tmp/.staged" ] || exit 0

# fmtool: $FMTOOL if set, else the one on PATH, else the binary that installed this hook.
if [ -n "$FMTOOL" ]; then
    fmtool=$FMTOOL
elif command -v fmtool >/dev/null 2>&1; then
    fmtool=fmtool
else
    fmtool=$fallback
fi
if [ -z "$fmtool" ] || ! command -v "$fmtool" >/dev/null 2>&1; then
    echo "pre-commit: files that decide your grade are staged, but fmtool${{FMTOOL:+ ($FMTOOL)}} is not installed, so they were not checked:" >&2
    tr '\000' '\n' <"$tmp/.staged" | sed 's/^/    /' >&2
    echo "Install fmtool: cargo install --path <your fmtool checkout>  (puts fmtool in ~/.cargo/bin; make sure that is on PATH)," >&2
    echo "or set FMTOOL=/path/to/fmtool. To commit without the check once: git commit --no-verify" >&2
    exit 1
fi
case $fmtool in /*) ;; *) fmtool=$(command -v "$fmtool") ;; esac

# A commit holds the index, not the working tree: check the whole repository as the index has
# it (the model with its other files, nn_predict.py with the model and the workflow), in a
# folder of its own beside the hook's files.
git checkout-index --all --force --prefix="$tmp/index/" || exit 1

status=0
(cd "$tmp/index" && xargs -0 "$fmtool" check -- <"$tmp/.staged") || status=1

# Each staged file's model, scored once: its own folder, or the model/ of its repository.
if [ -n "$min_accuracy" ]; then
    xargs -0 -n1 sh -c '
            tmp=$1 fmtool=$2 min=$3 f=$4
            case $f in
                *.h5|*.keras) exit 0 ;;
                */fashion_mnist.json|*/fashion_mnist.npz) d=${{f%/*}} ;;
                fashion_mnist.json|fashion_mnist.npz) d=. ;;
                .github/workflows/*|utils/*) d=model ;;
                */utils/*) d=${{f%/utils/*}}/model ;;
                */*) d=${{f%/*}}/model ;;
                *) d=model ;;
            esac
            [ -d "$tmp/index/$d" ] || exit 0
            mkdir "$tmp/.seen-$(printf "%s" "$d" | cksum | cut -d" " -f1)" 2>/dev/null || exit 0
            if (cd "$tmp/index" && "$fmtool" score --min-accuracy "$min" "--model=$d" >"$tmp/.score" 2>&1); then
                grep "^accuracy" "$tmp/.score" | while IFS= read -r line; do printf "%s: %s\n" "$d" "$line"; done
            else
                cat "$tmp/.score" >&2
                exit 1
            fi' sh "$tmp" "$fmtool" "$min_accuracy" <"$tmp/.staged" || status=1
fi

if [ "$status" -ne 0 ]; then
    echo "pre-commit: fmtool found problems in the staged files; fix them and stage again (or commit with --no-verify)." >&2
fi
exit $status
"#
    )
}

/// The hooks directory of the git repository containing `repo` (honours `core.hooksPath`).
fn hooks_dir(repo: &Path) -> Result<PathBuf> {
    if !repo.is_dir() {
        return Err(err!("--repo {}: no such directory", repo.display()));
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .current_dir(repo)
        .output()
        .map_err(|e| err!("cannot run git: {e}").with_hint("install git; a pre-commit hook needs it anyway"))?;
    if !out.status.success() {
        return Err(err!("{} is not inside a git repository", repo.display())
            .with_hint("run `git init` first, or pass --repo DIR with the repository's directory"));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether an executable named `fmtool` is on PATH.
fn fmtool_on_path() -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join("fmtool").is_file())).unwrap_or(false)
}

pub fn install(args: &HookInstallArgs) -> Result<HookReport> {
    if let Some(x) = args.min_accuracy
        && !(0.0..=1.0).contains(&x)
    {
        return Err(err!("--min-accuracy {x} is not between 0 and 1"));
    }
    let dir = hooks_dir(&args.repo)?;
    let path = dir.join("pre-commit");
    // symlink_metadata: a dangling `pre-commit` symbolic link is a hook there too.
    let replaced = path.symlink_metadata().is_ok();
    if replaced && !args.force {
        // Through fsguard: a FIFO named pre-commit is refused, never read (which would block).
        let ours = crate::fsguard::read(&path, 1 << 20).is_ok_and(|b| String::from_utf8_lossy(&b).contains(MARKER));
        let e = if ours {
            err!("{} is already fmtool's hook", path.display())
                .with_hint("pass --force to write it again (for example with another --min-accuracy)")
        } else {
            err!("{} already exists; fmtool does not replace a hook it did not write", path.display())
                .with_hint("pass --force to replace it (its content is lost), or call `fmtool check` from it yourself")
        };
        return Err(e);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, &e))?;
    let fallback = std::env::current_exe().ok().map(|p| p.display().to_string());
    let hook = script(args.min_accuracy, fallback.as_deref());
    crate::atomic::write_atomic_mode(&path, hook.as_bytes(), args.force, Some(0o755))?;
    Ok(HookReport {
        path: path.display().to_string(),
        replaced,
        min_accuracy: args.min_accuracy,
        on_path: fmtool_on_path(),
        fallback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn script_carries_the_settings() {
        let s = script(Some(0.85), Some("/opt/fm tool/fmtool"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("min_accuracy='0.85'"));
        assert!(s.contains("fallback='/opt/fm tool/fmtool'"));
        assert!(s.contains(MARKER));
        let s = script(None, None);
        assert!(s.contains("min_accuracy=''"));
    }

    #[test]
    fn script_is_valid_posix_sh() {
        // `sh -n` parses without running.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pre-commit");
        std::fs::write(&p, script(Some(0.9), Some("/x/fmtool"))).unwrap();
        let out = std::process::Command::new("sh").arg("-n").arg(&p).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
