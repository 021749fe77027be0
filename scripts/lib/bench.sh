# shellcheck shell=bash
# What the benchmarks share (sourced after lib/kafka.sh): the native stack started if it is
# not running (and stopped again at exit), throwaway topics, the processes they track in
# $WORK, CPU accounting. Set WORK before sourcing.

BENCH_STARTED=0
BENCH_TOPICS=()

# bench_setup: the native stack up, the cleanup at exit, the client settings as admin
# (benchmark topics are not in the ACLs; both sides use the same SASL_SSL).
bench_setup() {
  mkdir -p "$WORK" && chmod 700 "$WORK"
  "$REPO_ROOT/scripts/local-status.sh" >/dev/null 2>&1 || { "$REPO_ROOT/scripts/local-up.sh"; BENCH_STARTED=1; }
  trap bench_cleanup EXIT
  set -a; source "$CLIENT_ENV"; set +a
  export KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD_FILE; KAFKA_SASL_PASSWORD_FILE=$(password_file admin)
  export RUST_LOG="${BENCH_RUST_LOG:-warn}"
}

bench_cleanup() {
  local f t
  for f in "$WORK"/*.pid; do [[ -f $f ]] && stop_tracked "$f" 30; done
  for t in "${BENCH_TOPICS[@]}"; do
    admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$t" >/dev/null 2>&1 || true
  done
  if (( BENCH_STARTED )); then "$REPO_ROOT/scripts/local-down.sh"; fi
}

# new_topic NAME [PARTITIONS]: the topic and its dead-letter topic, deleted at exit.
new_topic() {
  local t
  for t in "$1" "$1-dlq"; do
    admin_tool org.apache.kafka.tools.TopicCommand --create --topic "$t" --partitions "${2:-$EVENTS_TOPIC_PARTITIONS}" \
      --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" >/dev/null
    BENCH_TOPICS+=("$t")
  done
}

# fresh_emulator: a newly started Firestore emulator (it keeps everything in memory).
fresh_emulator() {
  stop_tracked "$LOCAL_DIR/firestore/pid" 30
  "$REPO_ROOT/scripts/firestore-up.sh"
  set -a; source "$LOCAL_DIR/firestore/env"; set +a
}

# cpu_of PIDFILE: CPU seconds (user + system) the tracked process has used so far.
cpu_of() {
  local pid; read -r pid _ < "$1" 2>/dev/null || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}
