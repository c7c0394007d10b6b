//! The headless browser the suite renders `fmtool grade --report`'s page in: Debian's chromium.
//! `cargo xtask test` installs it (apt-get, as root or through a password-less sudo) when it is
//! missing, so that a fresh machine needs only the README's one test command.

use std::path::PathBuf;
use std::process::Command;

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

pub(crate) fn apt(args: &[&str]) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
    if !root {
        cmd.args(["-n", "apt-get"]);
    }
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
}

/// The browser's path: $FMTOOL_CHROMIUM, else one on PATH, else Debian's, installed now.
pub fn ensure() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FMTOOL_CHROMIUM") {
        return Ok(p.into());
    }
    if let Some(p) = on_path() {
        return Ok(p);
    }
    eprintln!("xtask: installing Debian's chromium (the HTML report's test renders the page in it)");
    let install = ["install", "-y", "--no-install-recommends", "chromium"];
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err("the suite renders fmtool grade's HTML report in chromium, which is missing and could not be \
                    installed: run `apt-get install chromium` (Debian) or set FMTOOL_CHROMIUM to a Chromium or Chrome"
            .into());
    }
    on_path().ok_or_else(|| "apt-get installed chromium, but it is not on PATH".into())
}
