//! `cargo xtask measure`: the peak memory it reports is the command's own, not its caller's.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn measure(cmd: &[&str]) -> (bool, String) {
    // One folder per call: the tests run in parallel threads of one process.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("xtask-measure-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["measure", "--report"])
        .arg(&report)
        .arg("--")
        .args(cmd)
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    (status.success(), text)
}

fn field(json: &str, key: &str) -> f64 {
    let at = json.find(&format!("\"{key}\": ")).unwrap_or_else(|| panic!("no {key} in {json}")) + key.len() + 4;
    json[at..].split([',', '}']).next().unwrap().trim().parse().unwrap()
}

/// A command that touches 64 MiB reports at least that; `true`, started while this test process
/// holds 256 MiB, reports a few MiB: the helper does not pass its caller's peak on to the child
/// (a plain wait4 from a large Python process would report the Python process's peak).
#[test]
fn reports_the_commands_own_peak_memory() {
    let big: Vec<u8> = vec![1; 256 << 20];
    let (ok, small) = measure(&["true"]);
    assert!(ok, "{small}");
    assert!(field(&small, "max_rss_kib") < 32.0 * 1024.0, "`true` reported {small}");
    let (ok, alloc) = measure(&["python3", "-c", "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096])"]);
    assert!(ok, "{alloc}");
    let rss = field(&alloc, "max_rss_kib") / 1024.0;
    assert!((64.0..256.0).contains(&rss), "64 MiB child reported {rss} MiB: {alloc}");
    assert!(field(&alloc, "wall_s") > 0.0);
    assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 256 << 20);
}

/// A failing command makes `measure` fail too, and its exit code is in the report.
#[test]
fn a_failing_command_fails_and_is_reported() {
    let (ok, report) = measure(&["sh", "-c", "exit 3"]);
    assert!(!ok);
    assert_eq!(field(&report, "exit"), 3.0);
}
