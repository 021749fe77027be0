//! What to attack and with which identities. Every value comes from a flag or the
//! environment, like the services' own settings; passwords only from files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use platform::{KafkaArgs, KafkaSettings, ScramMechanism};
use store::FirestoreArgs;

#[derive(Debug, Parser)]
#[command(
    name = "attacker",
    about = "Attack the secure cluster and the analytics pipeline; every attack must be rejected",
    after_help = "Exit status: 0 when every attack was rejected and every positive control passed, \
                  1 otherwise, 2 when the suite cannot start."
)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// One subcommand per scenario; `all` runs every one of them in a single run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Scenario {
    /// Producer and consumer trusting an impostor CA, or only the system CAs.
    ImpostorCa,
    /// Connecting through an address the broker certificate does not name.
    Hostname,
    /// Producer and consumer with a wrong password.
    WrongPassword,
    /// Producer and consumer as a user the cluster does not know.
    UnknownUser,
    /// Plaintext and TLS-without-SASL clients against the SASL_SSL listener.
    NoSasl,
    /// SASL mechanisms the listener does not enable (PLAIN, the other SCRAM variant).
    Mechanism,
    /// Authenticated principals stepping outside their ACLs.
    Acl,
    /// Malformed and hostile events written by the injector while analytics runs.
    Poison,
    /// Positive controls: the legitimate principals can do their jobs.
    Controls,
    /// Every scenario above, in one run, with one verdict table.
    All,
}

impl Scenario {
    pub const EACH: [Scenario; 9] = [
        Scenario::Controls,
        Scenario::ImpostorCa,
        Scenario::Hostname,
        Scenario::WrongPassword,
        Scenario::UnknownUser,
        Scenario::NoSasl,
        Scenario::Mechanism,
        Scenario::Acl,
        Scenario::Poison,
    ];

    /// The scenarios this subcommand stands for.
    pub fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => Self::EACH.to_vec(),
            one => vec![one],
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Bootstrap brokers of the cluster under attack.
    #[arg(long, env = "KAFKA_BROKERS", global = true)]
    pub brokers: Option<String>,
    /// The CA the legitimate clients trust.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION", global = true)]
    pub ca: Option<PathBuf>,
    /// The SCRAM mechanism the cluster enables.
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        default_value = "SCRAM-SHA-256",
        global = true
    )]
    pub mechanism: ScramMechanism,
    /// A CA that did not sign the brokers (`certs/impostor-ca.crt`, made by `make certs`).
    #[arg(long, env = "ATTACK_IMPOSTOR_CA", global = true)]
    pub impostor_ca: Option<PathBuf>,
    /// Directory of `<user>.password` files; the per-user flags below take precedence.
    #[arg(long, env = "ATTACK_SECRETS_DIR", global = true)]
    pub secrets_dir: Option<PathBuf>,
    #[command(flatten)]
    pub simulator: SimulatorIdentity,
    #[command(flatten)]
    pub analytics: AnalyticsIdentity,
    #[command(flatten)]
    pub injector: InjectorIdentity,
    #[arg(
        long,
        env = "EVENTS_TOPIC",
        default_value = "e-commerce-events",
        global = true
    )]
    pub events_topic: String,
    #[arg(
        long,
        env = "DLQ_TOPIC",
        default_value = "e-commerce-events-dlq",
        global = true
    )]
    pub dlq_topic: String,
    #[arg(
        long,
        env = "ANALYTICS_GROUP",
        default_value = "analytics",
        global = true
    )]
    pub analytics_group: String,
    /// The group the injector audits the dead-letter topic in.
    #[arg(
        long,
        env = "INJECTOR_GROUP",
        default_value = "injector",
        global = true
    )]
    pub injector_group: String,
    /// Seconds within which every attack must be rejected.
    #[arg(
        long,
        env = "ATTACK_TIMEOUT_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub attack_timeout_seconds: u64,
    /// Seconds the poison scenario waits for analytics to dead-letter and count.
    #[arg(
        long,
        env = "ATTACK_POISON_TIMEOUT_SECONDS",
        default_value_t = 120,
        global = true
    )]
    pub poison_timeout_seconds: u64,
    #[command(flatten)]
    pub firestore: FirestoreArgs,
}

macro_rules! identity {
    ($name:ident, $user_flag:literal, $user_env:literal, $default:literal, $file_flag:literal, $file_env:literal) => {
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            #[arg(id = $user_flag, long = $user_flag, env = $user_env, default_value = $default, global = true)]
            pub user: String,
            #[arg(id = $file_flag, long = $file_flag, env = $file_env, global = true)]
            pub password_file: Option<PathBuf>,
        }
    };
}
identity!(
    SimulatorIdentity,
    "simulator-user",
    "ATTACK_SIMULATOR_USER",
    "simulator",
    "simulator-password-file",
    "ATTACK_SIMULATOR_PASSWORD_FILE"
);
identity!(
    AnalyticsIdentity,
    "analytics-user",
    "ATTACK_ANALYTICS_USER",
    "analytics",
    "analytics-password-file",
    "ATTACK_ANALYTICS_PASSWORD_FILE"
);
identity!(
    InjectorIdentity,
    "injector-user",
    "ATTACK_INJECTOR_USER",
    "injector",
    "injector-password-file",
    "ATTACK_INJECTOR_PASSWORD_FILE"
);

/// The cluster and the three identities the suite uses, validated.
#[derive(Debug, Clone)]
pub struct Target {
    pub simulator: KafkaSettings,
    pub analytics: KafkaSettings,
    pub injector: KafkaSettings,
    pub impostor_ca: Option<PathBuf>,
    pub events_topic: String,
    pub dlq_topic: String,
    pub analytics_group: String,
    pub injector_group: String,
    pub timeout: Duration,
    pub poison_timeout: Duration,
    pub firestore: FirestoreArgs,
}

impl TargetArgs {
    pub fn into_target(self) -> anyhow::Result<Target> {
        let dir = self.secrets_dir.as_deref();
        // Each identity is validated like a service's own settings (platform's KafkaArgs:
        // brokers, CA, the password file's first line), only with this user and file.
        let settings = |user: &str, file: Option<&Path>| -> anyhow::Result<KafkaSettings> {
            let password_file = match (file, dir) {
                (Some(f), _) => f.to_owned(),
                (None, Some(d)) => d.join(format!("{user}.password")),
                (None, None) => bail!(
                    "no password for {user}: set ATTACK_SECRETS_DIR or the user's ATTACK_*_PASSWORD_FILE"
                ),
            };
            KafkaArgs {
                brokers: self.brokers.clone(),
                username: Some(user.to_owned()),
                password_file: Some(password_file),
                mechanism: self.mechanism,
                ca_location: self.ca.clone(),
                ..KafkaArgs::default()
            }
            .into_settings()
            .map_err(|e| anyhow::anyhow!("{user}:\n{}", platform::kafka::describe_errors(&e)))
        };
        Ok(Target {
            simulator: settings(
                &self.simulator.user,
                self.simulator.password_file.as_deref(),
            )?,
            analytics: settings(
                &self.analytics.user,
                self.analytics.password_file.as_deref(),
            )?,
            injector: settings(&self.injector.user, self.injector.password_file.as_deref())?,
            impostor_ca: self.impostor_ca,
            events_topic: self.events_topic,
            dlq_topic: self.dlq_topic,
            analytics_group: self.analytics_group,
            injector_group: self.injector_group,
            timeout: Duration::from_secs(self.attack_timeout_seconds.max(1)),
            poison_timeout: Duration::from_secs(self.poison_timeout_seconds.max(1)),
            firestore: self.firestore,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn all_expands_to_every_scenario_once() {
        let all = Scenario::All.expand();
        assert_eq!(all.len(), Scenario::EACH.len());
        assert!(!all.contains(&Scenario::All));
        assert_eq!(Scenario::Acl.expand(), vec![Scenario::Acl]);
    }
}
