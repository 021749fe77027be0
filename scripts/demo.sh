#!/usr/bin/env bash
# The main job on a fresh machine: start the native secure cluster, run the pipeline for a
# bounded time, print what it shows, and stop everything it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
trap '"$here/local-down.sh"' EXIT
"$here/local-up.sh"
cargo run --quiet -p platform --example secure_round_trip -- .local/kafka/client.env
