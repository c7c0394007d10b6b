//! `cargo xtask measure --report FILE -- CMD ARGS...`: runs one command and writes its wall time and
//! peak resident memory as JSON. The benchmark uses it so that a child's peak memory is its own.
//!
//! Why a separate small process: Linux keeps a process's peak RSS across `exec`, so a command
//! started straight from the benchmark's Python process (hundreds of MiB of NumPy and TensorFlow)
//! would report the parent's memory as its own. Started from this small process, it reports its own.

use std::process::Command;
use std::time::Instant;

pub fn run(args: &[String]) -> Result<(), String> {
    let (report, cmd) = match args {
        [flag, report, dashes, cmd @ ..] if flag == "--report" && dashes == "--" && !cmd.is_empty() => (report, cmd),
        _ => return Err("usage: cargo xtask measure --report FILE -- CMD [ARGS...]".into()),
    };
    let start = Instant::now();
    let child = Command::new(&cmd[0]).args(&cmd[1..]).spawn().map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for (nothing calls `child.wait`, and dropping a
    // Child does not wait), and both out-pointers point to live, writable values.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if got != pid {
        return Err(format!("wait4 on {}: {}", cmd[0], std::io::Error::last_os_error()));
    }
    let exit = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    // ru_maxrss is in KiB on Linux.
    let json = format!("{{\"wall_s\": {wall:.6}, \"max_rss_kib\": {}, \"exit\": {exit}}}\n", usage.ru_maxrss);
    std::fs::write(report, json).map_err(|e| format!("cannot write {report}: {e}"))?;
    if exit == 0 { Ok(()) } else { Err(format!("{} exited with {exit}", cmd[0])) }
}
