//! Kafka client settings. Every client of the project is built here, so the transport is
//! always `SASL_SSL` + SCRAM with the broker certificate verified against our CA *and* its
//! host name (`ssl.endpoint.identification.algorithm=https`). There is no plaintext
//! fallback: missing credentials or CA are a start-up error listing everything missing.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

/// The SCRAM variant: SHA-256 on the native and compose clusters, SHA-512 on Strimzi
/// (its user operator only issues SHA-512 credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ScramMechanism {
    #[default]
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl ScramMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Command-line / environment form of the Kafka connection, shared by every service.
#[derive(clap::Args, Clone, Default)]
pub struct KafkaArgs {
    /// Comma-separated bootstrap brokers (host:port).
    #[arg(long = "kafka-brokers", env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// SCRAM user name.
    #[arg(long = "kafka-username", env = "KAFKA_SASL_USERNAME")]
    pub username: Option<String>,
    /// SCRAM password (prefer KAFKA_SASL_PASSWORD_FILE).
    #[arg(
        long = "kafka-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// File holding the SCRAM password (first line).
    #[arg(long = "kafka-password-file", env = "KAFKA_SASL_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// SASL mechanism.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        default_value = "SCRAM-SHA-256"
    )]
    pub mechanism: ScramMechanism,
    /// PEM file of the CA that signed the broker certificates.
    #[arg(long = "kafka-ca", env = "KAFKA_SSL_CA_LOCATION")]
    pub ca_location: Option<PathBuf>,
    /// Extra librdkafka properties, `key=value`, comma-separated or repeated. Security
    /// properties cannot be overridden here.
    #[arg(
        long = "kafka-config",
        env = "KAFKA_CLIENT_CONFIG",
        value_delimiter = ','
    )]
    pub extra: Vec<String>,
}

impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("password_file", &self.password_file)
            .field("mechanism", &self.mechanism)
            .field("ca_location", &self.ca_location)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A problem with the Kafka settings; all of them are reported together at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaConfigError {
    #[error("no brokers: set KAFKA_BROKERS or --kafka-brokers")]
    MissingBrokers,
    #[error(
        "no SASL user: set KAFKA_SASL_USERNAME (plaintext or anonymous access is not supported)"
    )]
    MissingUsername,
    #[error("no SASL password: set KAFKA_SASL_PASSWORD_FILE or KAFKA_SASL_PASSWORD")]
    MissingPassword,
    #[error("both KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are set; keep one")]
    AmbiguousPassword,
    #[error("cannot read the password file {path}: {reason}")]
    PasswordFile { path: PathBuf, reason: String },
    #[error("no CA: set KAFKA_SSL_CA_LOCATION to the PEM file of the CA that signed the brokers")]
    MissingCa,
    #[error("CA file {path} is unusable: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error("extra client property {0:?} is not of the form key=value")]
    MalformedExtra(String),
    #[error("extra client property {0:?} is security-relevant and set by the typed settings only")]
    ForbiddenExtra(String),
}

/// Validated connection settings. Build clients with [`KafkaSettings::client_config`].
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub username: String,
    password: SecretString,
    pub mechanism: ScramMechanism,
    pub ca_location: PathBuf,
    pub extra: Vec<(String, String)>,
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("mechanism", &self.mechanism)
            .field("ca_location", &self.ca_location)
            .field("extra", &self.extra)
            .finish()
    }
}

/// Properties the pass-through may not touch: they decide whether the connection is
/// encrypted, authenticated and verified.
fn is_forbidden(key: &str) -> bool {
    key.starts_with("security.")
        || key.starts_with("sasl.")
        || key.starts_with("ssl.ca.")
        || key.starts_with("ssl.endpoint.")
        || key.starts_with("enable.ssl.")
        || key == "ssl_engine_callback_data"
        || key == "bootstrap.servers"
        || key == "metadata.broker.list"
}

impl KafkaArgs {
    /// Validate into settings, or list every problem.
    pub fn into_settings(self) -> Result<KafkaSettings, Vec<KafkaConfigError>> {
        let mut errors = Vec::new();
        let brokers = self.brokers.filter(|b| !b.trim().is_empty());
        if brokers.is_none() {
            errors.push(KafkaConfigError::MissingBrokers);
        }
        let username = self.username.filter(|u| !u.trim().is_empty());
        if username.is_none() {
            errors.push(KafkaConfigError::MissingUsername);
        }
        let password = match (self.password.filter(|p| !p.is_empty()), self.password_file) {
            (Some(_), Some(_)) => {
                errors.push(KafkaConfigError::AmbiguousPassword);
                None
            }
            (Some(p), None) => Some(SecretString::from(p)),
            (None, Some(path)) => match read_password_file(&path) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            (None, None) => {
                errors.push(KafkaConfigError::MissingPassword);
                None
            }
        };
        match &self.ca_location {
            None => errors.push(KafkaConfigError::MissingCa),
            Some(path) => {
                if let Err(e) = check_ca(path) {
                    errors.push(e);
                }
            }
        }
        let mut extra = Vec::new();
        for kv in self.extra.iter().filter(|s| !s.trim().is_empty()) {
            match kv.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    let k = k.trim();
                    if is_forbidden(k) {
                        errors.push(KafkaConfigError::ForbiddenExtra(k.to_owned()));
                    } else {
                        extra.push((k.to_owned(), v.trim().to_owned()));
                    }
                }
                _ => errors.push(KafkaConfigError::MalformedExtra(kv.clone())),
            }
        }
        match (brokers, username, password, self.ca_location) {
            (Some(brokers), Some(username), Some(password), Some(ca_location))
                if errors.is_empty() =>
            {
                Ok(KafkaSettings {
                    brokers,
                    username,
                    password,
                    mechanism: self.mechanism,
                    ca_location,
                    extra,
                })
            }
            _ => Err(errors),
        }
    }
}

fn read_password_file(path: &Path) -> Result<SecretString, KafkaConfigError> {
    let err = |reason: String| KafkaConfigError::PasswordFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(SecretString::from(first.to_owned()))
}

fn check_ca(path: &Path) -> Result<(), KafkaConfigError> {
    let err = |reason: &str| KafkaConfigError::BadCa {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(err("no PEM certificate in the file"));
    }
    Ok(())
}

impl KafkaSettings {
    /// Settings for `username`/`password` against `brokers`, verified like [`KafkaArgs`].
    pub fn new(
        brokers: impl Into<String>,
        username: impl Into<String>,
        password: SecretString,
        ca_location: impl Into<PathBuf>,
    ) -> Result<Self, Vec<KafkaConfigError>> {
        KafkaArgs {
            brokers: Some(brokers.into()),
            username: Some(username.into()),
            password: Some(password.expose_secret().to_owned()),
            ca_location: Some(ca_location.into()),
            ..KafkaArgs::default()
        }
        .into_settings()
    }

    /// The same connection as another principal (tests, the attack suite).
    pub fn with_credentials(&self, username: impl Into<String>, password: SecretString) -> Self {
        Self {
            username: username.into(),
            password,
            ..self.clone()
        }
    }

    /// A librdkafka configuration: the pass-through first, then the security properties,
    /// which therefore always win.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", self.mechanism.as_str())
            .set("sasl.username", &self.username)
            .set("sasl.password", self.password.expose_secret())
            .set("ssl.ca.location", self.ca_location.to_string_lossy())
            // Verify that the broker certificate names the host we connected to.
            .set("ssl.endpoint.identification.algorithm", "https")
            .set("enable.ssl.certificate.verification", "true");
        config
    }
}

/// Set each of `defaults` in `config` unless it is set already (by the pass-through,
/// `KAFKA_CLIENT_CONFIG`): a service's tuning, which operators may override, unlike the
/// properties it sets after.
pub fn set_defaults(config: &mut ClientConfig, defaults: &[(&str, &str)]) {
    for (key, value) in defaults {
        if config.get(key).is_none() {
            config.set(*key, *value);
        }
    }
}

impl KafkaArgs {
    /// Validated settings, or the start-up message a service prints before refusing to run.
    pub fn require(self) -> Result<KafkaSettings, String> {
        self.into_settings().map_err(|errors| {
            format!(
                "refusing to start without a secure Kafka connection:\n{}",
                describe_errors(&errors)
            )
        })
    }
}

/// Join validation errors into one message, one per line.
pub fn describe_errors(errors: &[KafkaConfigError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A record's headers as text (invalid UTF-8 replaced), collected in order into any
/// collection of pairs (a list, a map); empty without headers.
pub fn text_headers<M, C>(m: &M) -> C
where
    M: Message,
    C: FromIterator<(String, String)> + Default,
{
    m.headers()
        .map(|h| {
            h.iter()
                .map(|x| {
                    (
                        x.key.to_owned(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_file() -> tempfile_path::TempPath {
        tempfile_path::write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    }

    /// Minimal temp-file helper, to avoid a dependency for two tests.
    mod tempfile_path {
        use std::path::PathBuf;
        pub struct TempPath(pub PathBuf);
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        pub fn write(content: &str) -> TempPath {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("platform-test-{}-{n}", std::process::id()));
            std::fs::write(&p, content).expect("write temp file");
            TempPath(p)
        }
    }

    fn valid(ca: &Path) -> KafkaArgs {
        KafkaArgs {
            brokers: Some("127.0.0.1:19092".into()),
            username: Some("simulator".into()),
            password: Some("s3cret-value".into()),
            ca_location: Some(ca.to_owned()),
            ..KafkaArgs::default()
        }
    }

    #[test]
    fn nothing_set_lists_every_missing_piece() {
        let errors = KafkaArgs::default()
            .into_settings()
            .expect_err("must refuse");
        assert_eq!(
            errors,
            vec![
                KafkaConfigError::MissingBrokers,
                KafkaConfigError::MissingUsername,
                KafkaConfigError::MissingPassword,
                KafkaConfigError::MissingCa
            ]
        );
    }

    #[test]
    fn valid_settings_always_produce_verified_sasl_ssl() {
        let ca = ca_file();
        let mut args = valid(&ca.0);
        args.extra = vec!["linger.ms=5".into()];
        let config = args.into_settings().expect("valid").client_config("test");
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        assert_eq!(config.get("linger.ms"), Some("5"));
    }

    #[test]
    fn defaults_fill_in_only_what_the_pass_through_left_unset() {
        let mut config = ClientConfig::new();
        config.set("linger.ms", "5");
        set_defaults(&mut config, &[("linger.ms", "250"), ("batch.size", "1000")]);
        assert_eq!(config.get("linger.ms"), Some("5"));
        assert_eq!(config.get("batch.size"), Some("1000"));
    }

    #[test]
    fn security_properties_cannot_be_weakened_through_the_pass_through() {
        let ca = ca_file();
        for key in [
            "security.protocol=PLAINTEXT",
            "ssl.endpoint.identification.algorithm=none",
            "enable.ssl.certificate.verification=false",
            "sasl.mechanism=PLAIN",
            "ssl.ca.location=/tmp/x",
        ] {
            let mut args = valid(&ca.0);
            args.extra = vec![key.into()];
            let errors = args.into_settings().expect_err("must refuse");
            assert!(
                matches!(errors.as_slice(), [KafkaConfigError::ForbiddenExtra(_)]),
                "{key}: {errors:?}"
            );
        }
    }

    #[test]
    fn ca_must_exist_and_be_pem() {
        let not_pem = tempfile_path::write("hello");
        let mut args = valid(&not_pem.0);
        assert!(matches!(
            args.clone().into_settings().expect_err("refuse").as_slice(),
            [KafkaConfigError::BadCa { .. }]
        ));
        args.ca_location = Some("/nonexistent/ca.crt".into());
        assert!(matches!(
            args.into_settings().expect_err("refuse").as_slice(),
            [KafkaConfigError::BadCa { .. }]
        ));
    }

    #[test]
    fn password_comes_from_exactly_one_source_and_is_never_shown() {
        let ca = ca_file();
        let pw = tempfile_path::write("from-file-secret\n");
        let mut args = valid(&ca.0);
        args.password_file = Some(pw.0.clone());
        assert_eq!(
            args.clone().into_settings().expect_err("refuse"),
            vec![KafkaConfigError::AmbiguousPassword]
        );
        args.password = None;
        let settings = args.clone().into_settings().expect("valid");
        assert_eq!(
            settings.client_config("x").get("sasl.password"),
            Some("from-file-secret")
        );
        let shown = format!("{settings:?} {args:?}");
        assert!(
            !shown.contains("from-file-secret") && !shown.contains("s3cret-value"),
            "{shown}"
        );
    }
}
