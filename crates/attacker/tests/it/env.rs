//! The local stack's settings, the workspace's binaries, and child processes that are
//! killed by PID when a test ends, however it ends.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `KEY=value` lines of a file under `.local/`, written by the stack's scripts.
pub fn local_env(relative: &str) -> HashMap<String, String> {
    let path = repo_root().join(".local").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. These tests need the native stack: run `make test`.",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A binary of another workspace crate, built by `cargo test --workspace` (or `make test`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p {name})",
        bin.display()
    );
    bin
}

/// The generated SCRAM passwords, to check no output contains one.
pub fn passwords(secrets_dir: &str) -> Vec<String> {
    std::fs::read_dir(secrets_dir)
        .expect("secrets dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "password"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .expect("password file")
                .trim()
                .to_owned()
        })
        .filter(|p| p.len() >= 8)
        .collect()
}

/// A child process killed (by PID) when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guarded {
    pub fn spawn(command: &mut Command) -> Guarded {
        Guarded(command.spawn().expect("spawn"))
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}
