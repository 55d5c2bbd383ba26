//! Runs every program in `examples/` (cargo builds them before the tests), so an example a
//! user copies is known to work.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test-binary> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target profile dir");
    profile_dir.join("examples").join(name)
}

// The log_basics example: a group resumes after reopen, reading each record exactly once.
#[test]
fn log_basics() {
    let path = example("log_basics");
    assert!(
        path.exists(),
        "{} not built; run through cargo test",
        path.display()
    );
    let out = Command::new(&path).output().expect("run example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("first poll: 10 records"), "{stdout}");
    assert!(stdout.contains("total: 30"), "{stdout}");
}
