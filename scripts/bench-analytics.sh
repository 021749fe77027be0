#!/usr/bin/env bash
# Benchmark: analytics end to end (pre-filled topic -> durable aggregates and persisted
# offsets) against Kafka's own ConsumerPerformance draining the same topic with the same
# security settings, in one run, on the native cluster and the Firestore emulator. Also:
# Firestore writes per event, max writes per document per second, peak RSS, and a check that
# the lifetime counters equal the simulator's own counts.
#   BENCH_SESSIONS=15000 scripts/bench-analytics.sh
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
here=$(cd "$(dirname "$0")" && pwd)
cd "$REPO_ROOT"

SESSIONS="${BENCH_SESSIONS:-15000}"
TOPIC="bench-analytics-$(date +%s)"
PROJECT="bench-$(date +%s)"
GROUP="bench-$(date +%s)"
WORK="$LOCAL_DIR/bench"
mkdir -p "$WORK" && chmod 700 "$WORK"

started=0
"$here/local-status.sh" >/dev/null 2>&1 || { "$here/local-up.sh"; started=1; }
# A fresh emulator: it keeps everything in memory, so earlier runs would weigh on this one.
[[ ${BENCH_KEEP_EMULATOR:-0} == 1 ]] || stop_tracked "$LOCAL_DIR/firestore/pid" 30
"$here/firestore-up.sh"
cleanup() {
  [[ -f $WORK/analytics.pid ]] && stop_tracked "$WORK/analytics.pid" 30
  admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$TOPIC" >/dev/null 2>&1 || true
  admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$TOPIC-dlq" >/dev/null 2>&1 || true
  if (( started )); then "$here/local-down.sh"; fi
}
trap cleanup EXIT

cargo build --release --quiet -p simulator -p analytics
for t in "$TOPIC" "$TOPIC-dlq"; do
  admin_tool org.apache.kafka.tools.TopicCommand --create --topic "$t" --partitions "$EVENTS_TOPIC_PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" >/dev/null
done
set -a; source "$CLIENT_ENV"; source "$LOCAL_DIR/firestore/env"; set +a
# Benchmark topics are not in the ACLs: both sides run as admin, over the same SASL_SSL.
export KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD_FILE; KAFKA_SASL_PASSWORD_FILE=$(password_file admin)
export RUST_LOG="${BENCH_RUST_LOG:-warn}"

log "pre-filling $TOPIC with $SESSIONS sessions"
target/release/simulator --topic "$TOPIC" --users 200 --sessions "$SESSIONS" --rate 0 --seed 5 2> "$WORK/fill.txt"
events=$(awk '/^  delivered/ {print $2}' "$WORK/fill.txt")
expect_started=$(awk '/^  session_started/ {print $2}' "$WORK/fill.txt")
expect_purchases=$(awk '/^  purchase / {print $2}' "$WORK/fill.txt")

markers_sum() {
  curl -sf "http://$FIRESTORE_EMULATOR_HOST/v1/projects/$PROJECT/databases/(default)/documents/_offsets?pageSize=300" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(int(x["fields"]["next_offset"]["integerValue"]) for x in d.get("documents",[])))' 2>/dev/null || echo 0
}

# CPU seconds (user + system) a tracked process has used so far.
cpu_of() {
  local pid; read -r pid _ < "$1" 2>/dev/null || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}
cpu_all() {  # emulator, brokers (summed)
  local b=0 n
  for n in $(all_nodes); do b=$(awk -v a="$b" -v c="$(cpu_of "$LOCAL_DIR/kafka/node-$n/pid")" 'BEGIN { print a + c }'); done
  echo "$(cpu_of "$LOCAL_DIR/firestore/pid") $b"
}

log "analytics: draining $events events"
read -r emu_cpu0 brokers_cpu0 <<< "$(cpu_all)"
t0=$(date +%s.%N)
GCLOUD_PROJECT=$PROJECT EVENTS_TOPIC=$TOPIC DLQ_TOPIC=$TOPIC-dlq ANALYTICS_GROUP=$GROUP ANALYTICS_ADMIN_ADDR=127.0.0.1:9465 \
  start_tracked "$WORK/analytics.pid" "target/release/analytics" "$WORK/analytics.log" target/release/analytics
read -r apid _ < "$WORK/analytics.pid"
max_rss=0
while (( $(markers_sum) < events )); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$apid/status" 2>/dev/null || echo 0)
  (( ${rss:-0} > max_rss )) && max_rss=$rss
  pid_alive "$WORK/analytics.pid" || { tail -20 "$WORK/analytics.log"; die "analytics exited"; }
  sleep 0.2
done
t1=$(date +%s.%N)
read -r emu_cpu1 brokers_cpu1 <<< "$(cpu_all)"
analytics_cpu=$(cpu_of "$WORK/analytics.pid")
metrics=$(curl -sf http://127.0.0.1:9465/metrics)
echo "$metrics" > "$WORK/analytics.metrics"
stop_tracked "$WORK/analytics.pid" 60
rate=$(awk -v n="$events" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
writes=$(awk '/^analytics_firestore_writes_total/ {print $2}' <<< "$metrics")
per_doc=$(awk '/^analytics_doc_writes_per_second_max/ {print $2}' <<< "$metrics")

doc() { curl -sf "http://$FIRESTORE_EMULATOR_HOST/v1/projects/$PROJECT/databases/(default)/documents/statistics/lifetime" \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['fields'].get('$1',{}).get('integerValue','0'))"; }
got_started=$(doc started_sessions_count); got_purchases=$(doc purchase_count)
exact=yes
[[ $got_started == "$expect_started" && $got_purchases == "$expect_purchases" ]] || exact="NO (started $got_started/$expect_started, purchases $got_purchases/$expect_purchases)"

render_client_properties admin "$WORK/consumer.properties"
log "ConsumerPerformance: draining the same $events records"
kafka_java org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$KAFKA_BROKERS" --command-config "$WORK/consumer.properties" \
  --topic "$TOPIC" --messages "$events" --group "perf-$GROUP" --hide-header > "$WORK/cperf.txt" 2>&1 || { tail -5 "$WORK/cperf.txt"; die "ConsumerPerformance failed"; }
# CSV: start, end, MB consumed, MB/s, records, records/s, ...
perf_rate=$(grep -E '^[0-9]{4}-' "$WORK/cperf.txt" | tail -1 | awk -F', ' '{printf "%.0f", $6}')
ratio=$(awk -v a="$rate" -v b="$perf_rate" 'BEGIN { printf "%.2f", a / b }')

# Freshness at a fixed input rate: a live topic, analytics caught up, the simulator at
# FRESH_RATE events/s; analytics measures each record from its Kafka timestamp to its flush
# landing (aggregates durable and visible).
FRESH_RATE="${BENCH_FRESH_RATE:-5000}"
FTOPIC="$TOPIC-fresh"
for t in "$FTOPIC" "$FTOPIC-dlq"; do
  admin_tool org.apache.kafka.tools.TopicCommand --create --topic "$t" --partitions "$EVENTS_TOPIC_PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" >/dev/null
done
log "freshness: $FRESH_RATE events/s for ${BENCH_SECONDS:-60}s"
GCLOUD_PROJECT=$PROJECT-fresh EVENTS_TOPIC=$FTOPIC DLQ_TOPIC=$FTOPIC-dlq ANALYTICS_GROUP=$GROUP-fresh ANALYTICS_ADMIN_ADDR=127.0.0.1:9465 \
  start_tracked "$WORK/analytics.pid" "target/release/analytics" "$WORK/analytics-fresh.log" target/release/analytics
sleep 3
target/release/simulator --topic "$FTOPIC" --users 1000 --rate "$FRESH_RATE" --duration "${BENCH_SECONDS:-60}s" --progress-seconds 3600 2> "$WORK/fresh-sim.txt"
sleep 4
curl -sf http://127.0.0.1:9465/metrics > "$WORK/analytics-fresh.metrics"
fresh=$(awk '/^analytics_freshness_seconds/ {print}' "$WORK/analytics-fresh.metrics")
fresh_events=$(awk '/^  delivered/ {print $2}' "$WORK/fresh-sim.txt")
fresh_writes=$(awk '/^analytics_firestore_writes_total/ {print $2}' "$WORK/analytics-fresh.metrics")
fresh_flush=$(awk '/^analytics_flush_seconds_sum/ {s=$2} /^analytics_flush_seconds_count/ {n=$2} END {if (n) printf "%.2f", s / n}' "$WORK/analytics-fresh.metrics")
stop_tracked "$WORK/analytics.pid" 60
p50=$(awk -F' ' '/quantile="0.5"/ {print $2}' <<< "$fresh")
p99=$(awk -F' ' '/quantile="0.99"/ {print $2}' <<< "$fresh")
admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$FTOPIC" >/dev/null 2>&1 || true
admin_tool org.apache.kafka.tools.TopicCommand --delete --topic "$FTOPIC-dlq" >/dev/null 2>&1 || true

cat <<REPORT

== bench-analytics ($(nproc) cores, Kafka $KAFKA_VERSION, SASL_SSL + SCRAM-SHA-256, Firestore emulator) ==
analytics            $events events in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s: $rate events/s to durable aggregates + persisted offsets (from process start)
ConsumerPerformance  $perf_rate records/s (same topic, same security)
ratio                $ratio (target >= 0.50, and >= 20000 events/s)
cpu during the drain  emulator $(awk -v a="$emu_cpu0" -v b="$emu_cpu1" 'BEGIN { printf "%.1f", b - a }') s, analytics $analytics_cpu s, 3 brokers $(awk -v a="$brokers_cpu0" -v b="$brokers_cpu1" 'BEGIN { printf "%.1f", b - a }') s (of $(awk -v a="$t0" -v b="$t1" -v n="$(nproc)" 'BEGIN { printf "%.1f", (b - a) * n }') s available)
Firestore writes     $writes ($(awk -v w="$writes" -v n="$events" 'BEGIN { printf "%.4f", w / n }') per event; target <= 0.05; floor $(awk -v s="$expect_started" -v n="$events" 'BEGIN { printf "%.4f", s / n }'): one sessions_history write per session)
max writes/doc/s     $per_doc (target <= ~1)
peak RSS             $((max_rss / 1024)) MiB
lifetime counters    exact: $exact
freshness at $FRESH_RATE/s  p50 ${p50:-?}s, p99 ${p99:-?}s from Kafka timestamp to durable aggregate (target p99 < 2 s)
  at $FRESH_RATE/s       $(awk -v w="$fresh_writes" -v n="$fresh_events" 'BEGIN { if (n) printf "%.3f", w / n }') Firestore writes per event, mean flush ${fresh_flush:-?}s
REPORT
