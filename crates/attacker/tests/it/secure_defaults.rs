//! Secure defaults: the services refuse to start rather than connect insecurely, never echo
//! a password, and no secret is tracked by git.
use std::process::Command;

use testkit::{local_env, passwords, repo_root, workspace_bin};

const SECRET: &str = "pw-that-must-never-be-printed-4711";

/// What is wrong, the variables set, and what the refusal must say.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Run `bin` with only `vars` (and PATH) set; its exit code and stderr.
fn run(bin: &str, args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(workspace_bin(bin));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn services_refuse_to_start_without_a_complete_secure_connection() {
    let kafka = local_env("kafka/client.env");
    let firestore = local_env("firestore/env");
    let not_pem = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_pem.path(), "not a certificate").expect("write");
    let not_pem = not_pem.path().to_string_lossy().into_owned();
    let brokers = kafka["KAFKA_BROKERS"].as_str();
    let ca = kafka["KAFKA_SSL_CA_LOCATION"].as_str();
    let common = [
        ("GCLOUD_PROJECT", "secure-defaults"),
        (
            "FIRESTORE_EMULATOR_HOST",
            firestore["FIRESTORE_EMULATOR_HOST"].as_str(),
        ),
    ];
    let cases: Vec<Case> = vec![
        ("nothing set", vec![], "no SASL user"),
        (
            "no CA",
            vec![
                ("KAFKA_BROKERS", brokers),
                ("KAFKA_SASL_USERNAME", "simulator"),
                ("KAFKA_SASL_PASSWORD", SECRET),
            ],
            "no CA",
        ),
        (
            "a CA file that is not PEM",
            vec![
                ("KAFKA_BROKERS", brokers),
                ("KAFKA_SASL_USERNAME", "simulator"),
                ("KAFKA_SASL_PASSWORD", SECRET),
                ("KAFKA_SSL_CA_LOCATION", &not_pem),
            ],
            "no PEM certificate",
        ),
        (
            "no password",
            vec![
                ("KAFKA_BROKERS", brokers),
                ("KAFKA_SASL_USERNAME", "simulator"),
                ("KAFKA_SSL_CA_LOCATION", ca),
            ],
            "no SASL password",
        ),
        (
            "plaintext through the pass-through",
            vec![
                ("KAFKA_BROKERS", brokers),
                ("KAFKA_SASL_USERNAME", "simulator"),
                ("KAFKA_SASL_PASSWORD", SECRET),
                ("KAFKA_SSL_CA_LOCATION", ca),
                ("KAFKA_CLIENT_CONFIG", "security.protocol=PLAINTEXT"),
            ],
            "security-relevant",
        ),
        (
            "hostname verification off through the pass-through",
            vec![
                ("KAFKA_BROKERS", brokers),
                ("KAFKA_SASL_USERNAME", "simulator"),
                ("KAFKA_SASL_PASSWORD", SECRET),
                ("KAFKA_SSL_CA_LOCATION", ca),
                (
                    "KAFKA_CLIENT_CONFIG",
                    "ssl.endpoint.identification.algorithm=none",
                ),
            ],
            "security-relevant",
        ),
    ];
    for bin in ["simulator", "analytics"] {
        for (what, vars, expected) in &cases {
            let mut vars = vars.clone();
            vars.extend(common);
            let (code, text) = run(bin, &[], &vars);
            assert_eq!(
                code,
                Some(2),
                "{bin} with {what} did not refuse to start:\n{text}"
            );
            assert!(
                text.contains("refusing to start"),
                "{bin} with {what}:\n{text}"
            );
            assert!(
                text.contains(expected),
                "{bin} with {what} does not say {expected:?}:\n{text}"
            );
            assert!(
                !text.contains(SECRET),
                "{bin} with {what} printed the password:\n{text}"
            );
        }
    }
    let (code, text) = run("attacker", &["all"], &[("KAFKA_BROKERS", brokers)]);
    assert_eq!(
        code,
        Some(2),
        "the attacker started without its settings:\n{text}"
    );
}

#[test]
fn a_wrong_password_is_never_echoed_even_with_security_debugging() {
    let kafka = local_env("kafka/client.env");
    let (code, text) = run(
        "simulator",
        &["--users", "1", "--sessions", "1", "--rate", "10"],
        &[
            ("KAFKA_BROKERS", &kafka["KAFKA_BROKERS"]),
            ("KAFKA_SSL_CA_LOCATION", &kafka["KAFKA_SSL_CA_LOCATION"]),
            ("KAFKA_SASL_USERNAME", "simulator"),
            ("KAFKA_SASL_PASSWORD", SECRET),
            (
                "KAFKA_CLIENT_CONFIG",
                "debug=security,message.timeout.ms=3000",
            ),
            ("EVENTS_TOPIC", &kafka["KAFKA_EVENTS_TOPIC"]),
            ("RUST_LOG", "debug"),
        ],
    );
    assert_ne!(
        code,
        Some(0),
        "the simulator succeeded with a wrong password:\n{text}"
    );
    assert!(
        text.contains("Authentication failed"),
        "no authentication failure logged:\n{text}"
    );
    assert!(
        !text.contains(SECRET),
        "the password appears in the simulator's output"
    );
}

#[test]
fn no_secret_is_tracked_by_git() {
    let root = repo_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .expect("git")
    };
    let listed = git(&["ls-files"]);
    assert!(listed.status.success(), "git ls-files failed");
    let files = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(files.lines().count() > 20, "not a checkout of the project");
    for path in files.lines() {
        let name = path.rsplit('/').next().unwrap_or(path);
        let secret_like = [".password", ".key", ".p12", ".jks", ".pem", ".srl"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || name == ".env"
            || path.starts_with("secrets/")
            || (path.starts_with("certs/") && name != "README.md");
        assert!(
            !secret_like,
            "{path} is tracked by git but holds (or looks like) a secret"
        );
    }
    let kafka = local_env("kafka/client.env");
    let mut secrets = passwords(&kafka["KAFKA_SECRETS_DIR"]);
    for f in ["certs/ca.password", "certs/keystore.password"] {
        if let Ok(p) = std::fs::read_to_string(root.join(f)) {
            secrets.push(p.trim().to_owned());
        }
    }
    assert!(secrets.len() >= 4, "the generated secrets are missing");
    for s in secrets {
        let found = git(&["grep", "-l", "-F", "-e", &s]);
        assert!(
            found.stdout.is_empty(),
            "a generated secret appears in tracked files: {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }
}
