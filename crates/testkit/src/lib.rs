//! Test plumbing shared by every crate's integration tests (a dev-dependency only): the
//! native stack's settings that `make test` / `make local-up` write under `.local/`, SCRAM
//! clients per principal, the workspace's built binaries, child processes killed by PID
//! when a test ends, however it ends, topics read back ([`topic`]) and a recording proxy for
//! the Firestore emulator ([`recorder`]).

pub mod recorder;
pub mod topic;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use platform::KafkaSettings;
use secrecy::SecretString;

/// The workspace's root directory: the nearest directory holding `Cargo.lock` above the
/// package under test. Cargo sets `CARGO_MANIFEST_DIR` when it runs a test, so a test
/// binary built in one checkout and run in another (a moved target directory) reads the
/// stack of the checkout it runs in; the path baked in at build time is the fallback.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(&start)
        .canonicalize()
        .expect("repo root")
}

/// `KEY=value` lines of a file under `.local/`, written by the stack's scripts. Panics with
/// the fix when the stack is not running.
pub fn local_env(relative: &str) -> HashMap<String, String> {
    read_env(&repo_root().join(".local").join(relative))
}

fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. These tests need the native stack: run `make test`, or `make local-up` \
             (and scripts/firestore-up.sh) first.",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The native cluster's client settings (`.local/kafka/client.env`, or the file
/// `KAFKA_CLIENT_ENV` names).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub env: HashMap<String, String>,
}

impl Cluster {
    pub fn from_env() -> Cluster {
        let path = std::env::var_os("KAFKA_CLIENT_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".local/kafka/client.env"));
        Cluster {
            env: read_env(&path),
        }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("the client settings lack {key}"))
    }

    pub fn password_file(&self, user: &str) -> PathBuf {
        Path::new(self.var("KAFKA_SECRETS_DIR")).join(format!("{user}.password"))
    }

    pub fn password(&self, user: &str) -> SecretString {
        let path = self.password_file(user);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        SecretString::from(text.trim().to_owned())
    }

    /// SASL_SSL + SCRAM settings of `user`, as the services build them.
    pub fn settings(&self, user: &str) -> KafkaSettings {
        self.settings_with_password(user, self.password(user))
    }

    pub fn settings_with_password(&self, user: &str, password: SecretString) -> KafkaSettings {
        KafkaSettings::new(
            self.var("KAFKA_BROKERS"),
            user,
            password,
            self.var("KAFKA_SSL_CA_LOCATION"),
        )
        .unwrap_or_else(|e| panic!("settings for {user}: {e:?}"))
    }
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

/// A child process killed (by PID) when dropped, so a failing test leaves none behind.
/// `None` once the test has reaped it itself.
#[derive(Debug)]
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Guard {
    pub fn spawn(command: &mut Command) -> Guard {
        Guard(Some(command.spawn().expect("spawn")))
    }

    /// The child, while it is guarded.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a guarded child")
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }

    /// Send `signal` (e.g. `-TERM`, `-KILL`), then wait up to `timeout` for the exit status.
    pub fn signal(&mut self, signal: &str, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child();
        let pid = child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_root_is_the_workspace_this_test_runs_in() {
        let root = repo_root();
        assert!(root.join("Cargo.lock").is_file(), "{}", root.display());
        assert!(root.join("crates/testkit").is_dir(), "{}", root.display());
    }

    #[test]
    fn a_guarded_child_is_killed_when_dropped() {
        let mut guard = Guard::spawn(Command::new("sleep").arg("60"));
        let pid = guard.child().id();
        assert!(guard.alive());
        drop(guard);
        let proc = PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "process {pid} still exists");
    }

    #[test]
    fn signal_reports_the_exit_status() {
        let mut guard = Guard::spawn(Command::new("sleep").arg("60"));
        let status = guard
            .signal("-TERM", Duration::from_secs(10))
            .expect("exited");
        assert!(!status.success());
        assert!(!guard.alive());
    }
}
