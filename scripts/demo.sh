#!/usr/bin/env bash
# The main job on a fresh machine: start the secure cluster and the Firestore emulator, run
# the simulator and analytics for a bounded time, print the report, stop everything.
#   DEMO_SECONDS=30 DEMO_RATE=2000 make demo
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/kafka.sh"
cd "$REPO_ROOT"
SECONDS_TO_RUN="${DEMO_SECONDS:-30}"
RATE="${DEMO_RATE:-2000}"
PROJECT="${DEMO_PROJECT:-demo-$(date +%s)}"

# Build first, with cargo's progress showing (the first build takes minutes), so nothing
# waits on it while the stack is up.
log "building the release binaries (simulator, analytics)"
cargo build --release -p simulator -p analytics

trap '"$here/local-down.sh"' EXIT
# A fresh cluster, so the report shows this run only.
LOCAL_FRESH=1 "$here/local-up.sh"
"$here/firestore-up.sh"

set -a
source "$CLIENT_ENV"
source "$LOCAL_DIR/firestore/env"
set +a
export GCLOUD_PROJECT="$PROJECT" EVENTS_TOPIC="$KAFKA_EVENTS_TOPIC" DLQ_TOPIC="$KAFKA_DLQ_TOPIC" ANALYTICS_GROUP="$KAFKA_ANALYTICS_GROUP"
export RUST_LOG="${RUST_LOG:-info,librdkafka=warn}"

log "analytics: consuming $EVENTS_TOPIC as 'analytics' into Firestore project $PROJECT (metrics on 127.0.0.1:9464)"
start_analytics "$LOCAL_DIR/analytics/pid" "$LOCAL_DIR/analytics/analytics.log"

log "simulator: ${SECONDS_TO_RUN}s at $RATE events/s as 'simulator'"
KAFKA_SASL_USERNAME=simulator KAFKA_SASL_PASSWORD_FILE=$(password_file simulator) \
  target/release/simulator --users 500 --rate "$RATE" --duration "${SECONDS_TO_RUN}s" --progress-seconds 5

log "waiting for analytics to catch up"
for _ in $(seq 1 120); do
  lag=$(metric 127.0.0.1:9464 analytics_consumer_lag)
  queued=$(metric 127.0.0.1:9464 analytics_queue_depth)
  [[ ${lag:-1} == 0 && ${queued:-1} == 0 ]] && break
  sleep 1
done
sleep 7 # one more statistics interval and flush
stop_tracked "$LOCAL_DIR/analytics/pid" 60
tail -1 "$LOCAL_DIR/analytics/analytics.log"
echo
RUST_LOG=warn target/release/analytics report
