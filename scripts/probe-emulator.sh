#!/usr/bin/env bash
# Probe: the Firestore emulator's CPU per document and per value for each form of document
# analytics writes (counter shards written whole or incremented, session documents and
# variants of their layout), each form on a freshly started emulator of its own (its cost
# grows with what it holds), on a port apart from the native stack's. About 4 minutes.
#   PROBE_FORMS="shard-whole-nested session-whole" scripts/probe-emulator.sh
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

FORMS="${PROBE_FORMS:-shard-whole-nested shard-increments-nested shard-increments-nested-tenth shard-whole-top shard-increments-top session-whole session-elements-as-maps session-ids-packed session-without-event-ids session-without-details session-details-columnar}"
export FIRESTORE_PORT=8691 FIRESTORE_STATE="$LOCAL_DIR/probe-emulator"
trap 'stop_tracked "$FIRESTORE_STATE/pid" 30' EXIT

cargo build --release --quiet -p store --example emulator_costs
for form in $FORMS; do
  stop_tracked "$FIRESTORE_STATE/pid" 30
  scripts/firestore-up.sh 2> /dev/null
  read -r pid _ < "$FIRESTORE_STATE/pid"
  EMULATOR_PID=$pid FIRESTORE_EMULATOR_HOST=127.0.0.1:$FIRESTORE_PORT target/release/examples/emulator_costs "$form"
done
