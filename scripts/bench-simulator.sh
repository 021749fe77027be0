#!/usr/bin/env bash
# Benchmark: the simulator's delivered events/s and MB/s against Kafka's own
# ProducerPerformance, in one run, on the native 3-broker SASL_SSL cluster with acks=all,
# idempotence, zstd and the same batching. Both write the same bytes (real simulator events)
# to a dedicated bench topic as the `simulator` principal. Then the RSS of a 100k-user run.
# After a warm-up the two take turns for BENCH_ROUNDS rounds; the best of each is compared.
#   BENCH_SECONDS=20 BENCH_USERS=2000 BENCH_ROUNDS=2 scripts/bench-simulator.sh
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
here=$(cd "$(dirname "$0")" && pwd)
cd "$REPO_ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-20}"
USERS="${BENCH_USERS:-2000}"
BIG_USERS="${BENCH_BIG_USERS:-100000}"
ROUNDS="${BENCH_ROUNDS:-2}"
TOPIC="bench-simulator"
WORK="$LOCAL_DIR/bench"
mkdir -p "$WORK" && chmod 700 "$WORK"

started_cluster=0
if ! "$here/local-status.sh" >/dev/null 2>&1; then
  "$here/local-up.sh"; started_cluster=1
fi
cleanup() {
  admin_tool org.apache.kafka.tools.AclCommand --remove --force --allow-principal User:simulator \
    --topic "$TOPIC" --operation Write --operation Describe >/dev/null 2>&1 || true
  admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$TOPIC" >/dev/null 2>&1 || true
  if [[ -n ${sampler:-} ]]; then kill "$sampler" 2>/dev/null || true; fi
  if (( started_cluster )); then "$here/local-down.sh"; fi
}
trap cleanup EXIT

cargo build --release --quiet -p simulator
SIM=target/release/simulator

admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$TOPIC" >/dev/null 2>&1 || true
sleep 1
admin_tool org.apache.kafka.tools.TopicCommand --create --if-not-exists --topic "$TOPIC" \
  --partitions "$EVENTS_TOPIC_PARTITIONS" --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" >/dev/null
admin_tool org.apache.kafka.tools.AclCommand --add --allow-principal User:simulator --topic "$TOPIC" \
  --operation Write --operation Describe >/dev/null

export KAFKA_BROKERS; KAFKA_BROKERS=$(bootstrap_servers)
export KAFKA_SASL_USERNAME=simulator KAFKA_SASL_PASSWORD_FILE; KAFKA_SASL_PASSWORD_FILE=$(password_file simulator)
export KAFKA_SSL_CA_LOCATION="$CERTS_DIR/ca.crt" RUST_LOG=warn

# The same bytes for Kafka's tool: real events from a dry run.
"$SIM" --dry-run --users 50 --sessions 2000 --rate 0 --seed 1 > "$WORK/payloads.jsonl" 2>/dev/null
record_size=$(awk '{ n++; s += length($0) } END { printf "%d", s / n }' "$WORK/payloads.jsonl")
render_client_properties simulator "$WORK/producer.properties" acks=all enable.idempotence=true \
  compression.type=zstd linger.ms=250 batch.size=1000000  # the simulator's defaults (crates/simulator/src/sink.rs)

# Brokers start cold (JIT, page cache): a warm-up run first, then the two contenders take
# turns, so neither gets only the warm or only the cold half of the machine's time.
log "warm-up: ${WARMUP_SECONDS:-8}s of simulator traffic"
"$SIM" --topic "$TOPIC" --users "$USERS" --rate 0 --duration "${WARMUP_SECONDS:-8}s" --progress-seconds 3600 2> "$WORK/warmup.txt" \
  || { cat "$WORK/warmup.txt"; die "warm-up run failed"; }
sim_rates=() perf_rates=()
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS simulator: $USERS users, unlimited rate, ${SECONDS_PER_RUN}s"
  "$SIM" --topic "$TOPIC" --users "$USERS" --rate 0 --duration "${SECONDS_PER_RUN}s" --progress-seconds 3600 2> "$WORK/sim.txt" \
    || { cat "$WORK/sim.txt"; die "simulator run failed"; }
  sim_records=$(awk '/^  delivered/ {print $2}' "$WORK/sim.txt")
  sim_rates+=("$(awk '/^  delivered/ {gsub(/\(/,"",$3); print $3}' "$WORK/sim.txt")")
  sim_mbps=$(awk '/^  delivered/ {print $5}' "$WORK/sim.txt")
  undelivered=$(awk '/^  undelivered/ {print $4}' "$WORK/sim.txt")
  failed=$(awk '/^  failed/ {print $2}' "$WORK/sim.txt")
  (( undelivered == 0 && failed == 0 )) || { cat "$WORK/sim.txt"; die "the simulator lost records"; }

  log "round $round/$ROUNDS ProducerPerformance: $sim_records records (mean $record_size B)"
  kafka_java org.apache.kafka.tools.ProducerPerformance --topic "$TOPIC" --num-records "$sim_records" \
    --payload-file "$WORK/payloads.jsonl" --throughput -1 --command-config "$WORK/producer.properties" \
    > "$WORK/perf.txt" 2>&1 || { tail -5 "$WORK/perf.txt"; die "ProducerPerformance failed"; }
  # Final line: "N records sent, X records/sec (Y MB/sec), ..."
  perf_line=$(grep 'records sent' "$WORK/perf.txt" | tail -1)
  perf_rates+=("$(awk '{printf "%.0f", $4}' <<< "$perf_line")")
  perf_mbps=$(awk '{gsub(/\(/,"",$6); print $6}' <<< "$perf_line")
  log "round $round: simulator ${sim_rates[-1]} records/s ($sim_mbps MB/s), ProducerPerformance ${perf_rates[-1]} records/s ($perf_mbps MB/s)"
done
best() { printf '%s\n' "$@" | sort -n | tail -1; }
sim_rate=$(best "${sim_rates[@]}") perf_rate=$(best "${perf_rates[@]}")

log "memory: $BIG_USERS concurrent users at 20000 events/s for ${SECONDS_PER_RUN}s"
"$SIM" --topic "$TOPIC" --users "$BIG_USERS" --rate 20000 --duration "${SECONDS_PER_RUN}s" --progress-seconds 3600 2> "$WORK/big.txt" &
sim_pid=$!
max_rss=0
while kill -0 "$sim_pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$sim_pid/status" 2>/dev/null || echo 0)
  (( ${rss:-0} > max_rss )) && max_rss=$rss
  sleep 0.5
done
wait "$sim_pid" || { cat "$WORK/big.txt"; die "100k-user run failed"; }
big_delivered=$(awk '/^  delivered/ {print $2}' "$WORK/big.txt")

ratio=$(awk -v a="$sim_rate" -v b="$perf_rate" 'BEGIN { printf "%.2f", a / b }')
mb() { awk -v r="$1" -v b="$record_size" 'BEGIN { printf "%.1f", r * b / 1e6 }'; }
cat <<REPORT

== bench-simulator ($(nproc) cores, Kafka $KAFKA_VERSION, 3 brokers, SASL_SSL + SCRAM-SHA-256, acks=all, idempotent, zstd) ==
simulator            ${sim_rates[*]} records/s in $ROUNDS rounds of ${SECONDS_PER_RUN}s; best $sim_rate records/s, ~$(mb "$sim_rate") MB/s ($USERS users; nothing failed or undelivered)
ProducerPerformance  ${perf_rates[*]} records/s, same record counts; best $perf_rate records/s, ~$(mb "$perf_rate") MB/s (same payloads, mean $record_size B)
ratio                $ratio (best simulator / best ProducerPerformance; target >= 0.90)
100k users           peak RSS $((max_rss / 1024)) MiB at 20000 events/s ($big_delivered delivered; target < 1024 MiB)
REPORT
