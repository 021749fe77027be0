//! Where the database is: the flags every Firestore user shares.

use std::time::Duration;

use clap::Args;

use crate::client::Store;

#[derive(Debug, Clone, Args)]
pub struct FirestoreArgs {
    /// Google Cloud project of the Firestore database. With FIRESTORE_EMULATOR_HOST set the
    /// emulator is used; otherwise Application Default Credentials
    /// (GOOGLE_APPLICATION_CREDENTIALS = a service-account key file).
    #[arg(long, env = "GCLOUD_PROJECT", global = true)]
    pub project: Option<String>,
    /// Seconds a Firestore call may take before it counts as a transient failure.
    #[arg(
        long,
        env = "FIRESTORE_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub timeout_seconds: u64,
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no Firestore project: set GCLOUD_PROJECT (and FIRESTORE_EMULATOR_HOST for the emulator)"
    )]
    NoProject,
    #[error("cannot connect to Firestore: {0}")]
    Client(#[from] firestore::errors::FirestoreError),
}

impl FirestoreArgs {
    /// A client of the configured database; refuses to guess a project.
    pub async fn connect(&self) -> Result<Store, ConnectError> {
        let project = self.project.as_deref().ok_or(ConnectError::NoProject)?;
        Ok(Store::connect(project, Duration::from_secs(self.timeout_seconds.max(1))).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_project_it_refuses_and_says_what_to_set() {
        let args = FirestoreArgs {
            project: None,
            timeout_seconds: 1,
        };
        let e = args.connect().await.expect_err("no project");
        assert!(matches!(e, ConnectError::NoProject));
        assert!(e.to_string().contains("GCLOUD_PROJECT"), "{e}");
    }
}
