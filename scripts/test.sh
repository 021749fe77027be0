#!/usr/bin/env bash
# `make test`: lint, then start a fresh native cluster and the Firestore emulator, run every
# unit and integration test against them, and stop both whatever the outcome.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --all-targets --quiet
# Compose, Kubernetes and Dockerfile: static validation and agreement with config/kafka;
# then the compose dev stack, rendered and run natively (it stops what it starts).
"$here/validate-deploy.sh"
"$here/kafka-fetch.sh"
"$here/certs.sh"
"$here/secrets.sh"
# No generated secret may show in any process's arguments or environment while the stacks
# are formatted, started and run (the scanner first shows it catches one).
"$here/secret-scan.sh" --self-test
"$here/secret-scan.sh" "$here/compose-rehearse.sh"

trap '"$here/local-down.sh"' EXIT
"$here/secret-scan.sh" env LOCAL_FRESH=1 "$here/local-up.sh"
"$here/firestore-up.sh"
cargo test --workspace --all-targets --no-fail-fast
