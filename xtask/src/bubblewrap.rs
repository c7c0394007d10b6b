//! The sandbox the suite grades students' code in: Debian's bubblewrap (`bwrap`). `cargo xtask
//! test` installs it (apt-get, as root or through a password-less sudo, as chromium.rs does) when
//! it is missing: the sandbox tests fail on CI without it, and a fresh machine needs only the
//! README's one test command.

use std::process::Command;

fn works() -> bool {
    Command::new("bwrap").args(["--ro-bind", "/", "/", "true"]).output().is_ok_and(|o| o.status.success())
}

/// Installs bubblewrap when `bwrap` is not on PATH. A machine where it is installed but cannot
/// make a sandbox (user namespaces off) is left as it is: the tests say why.
pub fn ensure() -> Result<(), String> {
    let on_path =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join("bwrap").is_file());
    if on_path {
        if !works() {
            eprintln!("xtask: bwrap is installed but cannot make a sandbox here; the sandbox tests will say why");
        }
        return Ok(());
    }
    eprintln!("xtask: installing Debian's bubblewrap (fmtool grades students' code in its sandbox)");
    let install = ["install", "-y", "--no-install-recommends", "bubblewrap"];
    let installed =
        crate::chromium::apt(&install) || (crate::chromium::apt(&["update"]) && crate::chromium::apt(&install));
    if installed {
        Ok(())
    } else {
        Err("fmtool runs students' code in bubblewrap's sandbox, which is missing and could not be installed: \
             run `apt-get install bubblewrap` (Debian, Ubuntu)"
            .into())
    }
}
