#!/usr/bin/env bash
# The main job on a fresh machine: start the secure cluster and the Firestore emulator, run
# the simulator, analytics and the dashboard for a bounded time, print the report, stop
# everything.
#   DEMO_SECONDS=30 DEMO_RATE=2000 make demo
#   DEMO_SECONDS=0 make demo     # live: runs at DEMO_RATE (default 300/s) until Ctrl-C, then
#                                # catches up, prints the report and stops everything
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/kafka.sh"
cd "$REPO_ROOT"
SECONDS_TO_RUN="${DEMO_SECONDS:-30}"
if [[ $SECONDS_TO_RUN == 0 ]]; then RATE="${DEMO_RATE:-300}"; else RATE="${DEMO_RATE:-2000}"; fi
DASHBOARD_ADDR="${DASHBOARD_ADDR:-127.0.0.1:4000}"
PROJECT="${DEMO_PROJECT:-demo-$(date +%s)}"

# Build first, with cargo's progress showing (the first build takes minutes), so nothing
# waits on it while the stack is up.
log "building the release binaries (simulator, analytics, dashboard)"
cargo build --release -p simulator -p analytics -p dashboard

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

mkdir -p "$LOCAL_DIR/demo" && echo "$PROJECT" > "$LOCAL_DIR/demo/project"
DASHBOARD_ADDR=$DASHBOARD_ADDR DASHBOARD_ANALYTICS_ADMIN=127.0.0.1:9464 \
  start_tracked "$LOCAL_DIR/dashboard/pid" target/release/dashboard "$LOCAL_DIR/dashboard/dashboard.log" target/release/dashboard
log "dashboard: http://$DASHBOARD_ADDR/ (live while the demo runs; log in $LOCAL_DIR/dashboard/dashboard.log)"

simulate=(target/release/simulator --users 500 --rate "$RATE" --progress-seconds 5)
if [[ $SECONDS_TO_RUN == 0 ]]; then
  log "simulator: $RATE events/s as 'simulator' until Ctrl-C (then the report, and everything stops)"
else
  log "simulator: ${SECONDS_TO_RUN}s at $RATE events/s as 'simulator'"
  simulate+=(--duration "${SECONDS_TO_RUN}s")
fi
# Ctrl-C reaches the simulator (it ends its sessions and exits) and this script goes on:
# the other services run in sessions of their own.
KAFKA_SASL_USERNAME=simulator KAFKA_SASL_PASSWORD_FILE=$(password_file simulator) "${simulate[@]}"

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
