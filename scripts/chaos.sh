#!/usr/bin/env bash
# `make chaos`: on a fresh native cluster and Firestore emulator, run the chaos suite
# (crates/analytics/tests/chaos.rs) at full length once per seed, printing each run's table;
# stops everything it started whatever the outcome. Bounded: each run stops by itself.
#   CHAOS_SEEDS="1 2 3" CHAOS_SECONDS=90 CHAOS_RATE=2000 CHAOS_LONG_SESSION=20000 make chaos
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
source "$here/lib/common.sh"

# Used by the suite to undo its pause of the emulator if a run fails midway.
if [[ ${1:-} == --resume-emulator ]]; then
  read -r pid _ < "$LOCAL_DIR/firestore/pid" && kill -CONT "$pid"
  exit 0
fi

SEEDS=${CHAOS_SEEDS:-1 2 3}
export CHAOS_SECONDS=${CHAOS_SECONDS:-90}
export CHAOS_RATE=${CHAOS_RATE:-2000}
export CHAOS_LONG_SESSION=${CHAOS_LONG_SESSION:-20000}
export CHAOS_FAILPOINT_BYTES=${CHAOS_FAILPOINT_BYTES:-1000000}

log "building the release test binaries and the simulator (the services as users run them)"
cargo build --release -p simulator --quiet
cargo test --release -p analytics --test chaos --no-run --quiet
trap '"$here/local-down.sh"' EXIT
LOCAL_FRESH=1 "$here/local-up.sh"
"$here/firestore-up.sh"
for seed in $SEEDS; do
  log "chaos run, seed $seed: ${CHAOS_SECONDS}s at ${CHAOS_RATE} events/s"
  CHAOS_SEED=$seed cargo test --release -p analytics --test chaos --quiet -- --nocapture --test-threads 1
done
log "chaos: every run passed (seeds: $SEEDS)"
