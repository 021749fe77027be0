#!/usr/bin/env bash
# `make attack`: run the attack suite (`attacker all`, or the scenarios given as arguments)
# against the local native stack and print its verdict table. Whatever of the stack is not
# running (cluster, Firestore emulator, analytics as the `analytics` principal) is started
# for the run and stopped afterwards; what was already running is left as it was.
#   make attack                       # every scenario
#   scripts/attack.sh acl hostname    # some of them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/kafka.sh"
cd "$REPO_ROOT"

started=()
cleanup() {
  local what
  for what in "${started[@]}"; do
    case $what in
      analytics) stop_tracked "$LOCAL_DIR/analytics/pid" 60 ;;
      firestore) stop_tracked "$LOCAL_DIR/firestore/pid" ;;
      cluster) "$here/local-down.sh" ;;
    esac
  done
}
trap cleanup EXIT

cargo build --release --quiet -p analytics -p attacker
if ! "$here/local-status.sh" >/dev/null 2>&1; then
  log "the native cluster is not running: starting it for this run"
  "$here/local-up.sh"; started=(cluster "${started[@]}")
fi
if ! pid_alive "$LOCAL_DIR/firestore/pid"; then
  "$here/firestore-up.sh"; started=(firestore "${started[@]}")
fi

set -a
source "$CLIENT_ENV"
source "$LOCAL_DIR/firestore/env"
set +a
project_file="$LOCAL_DIR/analytics/project"
if ! pid_alive "$LOCAL_DIR/analytics/pid"; then
  mkdir -p "$LOCAL_DIR/analytics"
  echo "attack-$(date +%s)" > "$project_file"
  log "analytics: consuming $KAFKA_EVENTS_TOPIC as 'analytics' into Firestore project $(cat "$project_file")"
  GCLOUD_PROJECT=$(cat "$project_file") EVENTS_TOPIC=$KAFKA_EVENTS_TOPIC DLQ_TOPIC=$KAFKA_DLQ_TOPIC \
    ANALYTICS_GROUP=$KAFKA_ANALYTICS_GROUP \
    start_analytics "$LOCAL_DIR/analytics/pid" "$LOCAL_DIR/analytics/analytics.log"
  started=(analytics "${started[@]}")
fi
[[ -s $project_file ]] || die "analytics runs but $project_file is missing: stop it (make local-down) and retry"

export GCLOUD_PROJECT
GCLOUD_PROJECT=$(cat "$project_file")
export ATTACK_SECRETS_DIR=$KAFKA_SECRETS_DIR ATTACK_IMPOSTOR_CA=$KAFKA_IMPOSTOR_CA_LOCATION \
  EVENTS_TOPIC=$KAFKA_EVENTS_TOPIC DLQ_TOPIC=$KAFKA_DLQ_TOPIC ANALYTICS_GROUP=$KAFKA_ANALYTICS_GROUP \
  INJECTOR_GROUP=$KAFKA_INJECTOR_GROUP RUST_LOG=${ATTACK_LOG:-off}
(( $# > 0 )) || set -- all
status=0
for scenario in "$@"; do
  target/release/attacker "$scenario" || status=1
done
exit "$status"
