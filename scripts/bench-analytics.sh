#!/usr/bin/env bash
# Benchmark: analytics end to end (pre-filled topic -> durable aggregates and persisted
# offsets) against Kafka's own ConsumerPerformance draining the same topic with the same
# security settings, in one run, on the native cluster and the Firestore emulator. Also:
# Firestore writes per event, max writes per document per second, CPU per process, peak RSS,
# a check that the lifetime counters equal the simulator's own counts, and freshness at a
# fixed input rate.
#
# Each phase gets a freshly started emulator (it keeps everything in memory, so earlier data
# would weigh on it) and a warm-up of the same kind first (the emulator and the brokers are
# JVMs: their first seconds run interpreted code).
#   BENCH_SESSIONS=15000 BENCH_SECONDS=60 BENCH_FRESH_RATE=5000 scripts/bench-analytics.sh
# The freshness baseline writes every session at every flush; BENCH_BASELINE_BIN=path makes it
# another analytics build with its defaults instead, and adds a drain by that build before
# this one's (an A/B of two builds in one run, each on a fresh emulator after its own warm-up).
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
source "$(dirname "$0")/lib/bench.sh"
cd "$REPO_ROOT"

SESSIONS="${BENCH_SESSIONS:-15000}"
FRESH_RATE="${BENCH_FRESH_RATE:-5000}"
FRESH_SECONDS="${BENCH_SECONDS:-60}"
RUN="bench-$(date +%s)"
WORK="$LOCAL_DIR/bench"
ADMIN_ADDR=127.0.0.1:9465
[[ -z ${BENCH_BASELINE_BIN:-} || -x $BENCH_BASELINE_BIN ]] || die "BENCH_BASELINE_BIN=$BENCH_BASELINE_BIN is not an executable"

bench_setup
cargo build --release --quiet -p simulator -p analytics

# fill TOPIC SESSIONS OUT: a seeded, unlimited-rate simulator run; its summary in OUT.
fill() {
  target/release/simulator --topic "$1" --users 200 --sessions "$2" --rate 0 --seed 5 2> "$3"
}
# value KEY FILE: the second column of the line whose first is KEY (the simulator's summary,
# a Prometheus metric without labels).
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# analytics_on TOPIC LOG [NAME]: analytics on TOPIC, in a Firestore project and group named
# NAME (TOPIC by default; as admin: benchmark topics are not in the ACLs).
analytics_on() {
  local name=${3:-$1}
  GCLOUD_PROJECT=$name EVENTS_TOPIC=$1 DLQ_TOPIC=$1-dlq ANALYTICS_GROUP=$name ANALYTICS_ADMIN_ADDR=$ADMIN_ADDR \
    start_analytics "$WORK/analytics.pid" "$2" admin
}

# persisted: records whose flush has landed in the running analytics (aggregates applied and
# the flush's writes counted; the markers alone are visible one step earlier, before the
# applies and before the writes reach the metrics).
persisted() { local n; n=$(metric "$ADMIN_ADDR" analytics_persisted_records_total); echo "${n:-0}"; }

# drain TOPIC EVENTS [NAME]: run analytics until every event is durable; sets max_rss (KiB).
drain() {
  analytics_on "$1" "$WORK/analytics-${3:-$1}.log" "${3:-$1}"
  local apid rss; read -r apid _ < "$WORK/analytics.pid"
  max_rss=0
  while (( $(persisted) < $2 )); do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$apid/status" 2>/dev/null || echo 0)
    (( ${rss:-0} > max_rss )) && max_rss=$rss
    pid_alive "$WORK/analytics.pid" || { tail -20 "$WORK/analytics-${3:-$1}.log"; die "analytics exited"; }
    sleep 0.2
  done
}

# live TOPIC SECONDS: analytics caught up on a live topic, the simulator at FRESH_RATE.
live() {
  analytics_on "$1" "$WORK/analytics-$1.log"
  sleep 3
  target/release/simulator --topic "$1" --users 1000 --rate "$FRESH_RATE" --duration "$2s" --progress-seconds 3600 2> "$WORK/sim-$1.txt"
  sleep 4
}

cpu_all() {  # emulator, brokers (summed)
  local b=0 n
  for n in $(all_nodes); do b=$(awk -v a="$b" -v c="$(cpu_of "$LOCAL_DIR/kafka/node-$n/pid")" 'BEGIN { print a + c }'); done
  echo "$(cpu_of "$LOCAL_DIR/firestore/pid") $b"
}

# emulator_threads: the emulator's threads, one per line: id, kind (serving requests: gRPC,
# Netty, ...; gc; jit, the compilers, which go on compiling through minutes of this load: a
# cost of a fresh JVM, not of the work asked of it) and CPU seconds so far.
emulator_threads() {
  local pid t; read -r pid _ < "$LOCAL_DIR/firestore/pid"
  for t in /proc/"$pid"/task/*/stat; do cat "$t" 2>/dev/null; done | awk -v hz="$(getconf CLK_TCK)" '
    { name = $0; sub(/^[0-9]+ \(/, "", name); sub(/\) [A-Z] .*/, "", name)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      kind = name ~ /Compiler|Sweeper/ ? "jit" : name ~ /^(GC|G1|VM Thread)/ ? "gc" : "serve"
      printf "%s %s %.2f\n", $1, kind, (f[12] + f[13]) / hz }'
}
# emulator_split BEFORE AFTER EMULATOR_CPU: "serve gc jit" CPU seconds between two
# emulator_threads listings. Threads that ended meanwhile (the JVM stops idle compiler
# threads and starts them again) are not listed after: what the process used beyond the
# listed threads is counted as JIT.
emulator_split() {
  awk -v total="$3" 'NR == FNR { before[$1] = $3; next }
    { d = $3 - before[$1]; if ($2 == "gc") gc += d; else if ($2 == "jit") jit += d; else serve += d }
    END { rest = total - serve - gc - jit; if (rest > 0) jit += rest; printf "%.2f %.2f %.2f\n", serve, gc, jit }' "$1" "$2"
}

# -- Phase 1: draining a pre-filled topic ---------------------------------------------------
TOPIC="$RUN-drain" WARM="$RUN-warm"
new_topic "$TOPIC"; new_topic "$WARM"
log "pre-filling $TOPIC with $SESSIONS sessions (and $WARM with $((SESSIONS / 10)))"
fill "$TOPIC" "$SESSIONS" "$WORK/fill.txt"
fill "$WARM" "$((SESSIONS / 10))" "$WORK/fill-warm.txt"
events=$(value delivered "$WORK/fill.txt")
expect_started=$(value session_started "$WORK/fill.txt")
expect_purchases=$(value purchase "$WORK/fill.txt")

# drained NAME: one measured drain of TOPIC (and a warm-up on WARM first, on a fresh emulator)
# by the analytics build ANALYTICS_BIN, in a Firestore project and group of its own; its
# figures in drain_<field>[NAME], its metrics in $WORK/analytics-NAME.metrics.
declare -A drain_secs drain_rate drain_emu drain_serve drain_gc drain_jit drain_brokers drain_cpu drain_writes drain_per_doc drain_rss drain_exact
drained() {
  local name=$1 e0 e1 b0 b1 t0 t1 got_started got_purchases
  fresh_emulator
  log "$name: warm-up, draining $WARM"
  drain "$WARM" "$(value delivered "$WORK/fill-warm.txt")" "$RUN-$name-warm"
  stop_tracked "$WORK/analytics.pid" 60
  log "$name: draining $events events"
  read -r e0 b0 <<< "$(cpu_all)"; emulator_threads > "$WORK/threads-$name.0"
  t0=$(date +%s.%N)
  drain "$TOPIC" "$events" "$RUN-$name"
  t1=$(date +%s.%N)
  # The rate is to durable aggregates; the work counted below also includes writing every
  # session, which the partitions' next checkpoints do (within the checkpoint interval). A
  # build without checkpoints (no such gauge) has written them already.
  local deadline=$((SECONDS + 60)) unsaved
  while unsaved=$(metric "$ADMIN_ADDR" analytics_unsaved_records); [[ -n $unsaved && $unsaved != 0 ]] && (( SECONDS <= deadline )); do sleep 0.5; done
  read -r e1 b1 <<< "$(cpu_all)"; emulator_threads > "$WORK/threads-$name.1"
  drain_cpu[$name]=$(cpu_of "$WORK/analytics.pid")
  curl -sf "http://$ADMIN_ADDR/metrics" > "$WORK/analytics-$name.metrics"
  stop_tracked "$WORK/analytics.pid" 60
  drain_secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  drain_rate[$name]=$(awk -v n="$events" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  drain_emu[$name]=$(awk -v a="$e0" -v b="$e1" 'BEGIN { print b - a }')
  read -r "drain_serve[$name]" "drain_gc[$name]" "drain_jit[$name]" \
    <<< "$(emulator_split "$WORK/threads-$name.0" "$WORK/threads-$name.1" "${drain_emu[$name]}")"
  drain_brokers[$name]=$(awk -v a="$b0" -v b="$b1" 'BEGIN { print b - a }')
  drain_writes[$name]=$(value analytics_firestore_writes_total "$WORK/analytics-$name.metrics")
  drain_per_doc[$name]=$(value analytics_doc_writes_per_second_max "$WORK/analytics-$name.metrics")
  drain_rss[$name]=$((max_rss / 1024))
  # The lifetime figures as that build's `analytics report --json` reads them back.
  read -r got_started got_purchases < <(GCLOUD_PROJECT="$RUN-$name" "${ANALYTICS_BIN:-target/release/analytics}" report --json --top 0 2>/dev/null \
    | python3 -c 'import json, sys; l = json.load(sys.stdin)[-1]; print(l["sessions_started"], l["orders"])' || echo "? ?")
  drain_exact[$name]=yes
  [[ $got_started == "$expect_started" && $got_purchases == "$expect_purchases" ]] || drain_exact[$name]="NO (started $got_started/$expect_started, purchases $got_purchases/$expect_purchases)"
}
drains=()
if [[ -n ${BENCH_BASELINE_BIN:-} ]]; then
  ANALYTICS_BIN=$BENCH_BASELINE_BIN drained baseline
  drains+=(baseline)
fi
drained this
drains+=(this)

render_client_properties admin "$WORK/consumer.properties"
log "ConsumerPerformance: draining the same $events records"
# Its CPU (user + system, the JVM included) is the baseline of the CPU per event.
TIMEFORMAT='%U %S'
{ time kafka_java org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$KAFKA_BROKERS" --command-config "$WORK/consumer.properties" \
  --topic "$TOPIC" --messages "$events" --group "perf-$TOPIC" --hide-header > "$WORK/cperf.txt" 2>&1 || { tail -5 "$WORK/cperf.txt"; die "ConsumerPerformance failed"; }; } 2> "$WORK/cperf.cpu"
perf_cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$WORK/cperf.cpu")
# CSV: start, end, MB consumed, MB/s, records, records/s, ...
perf_rate=$(grep -E '^[0-9]{4}-' "$WORK/cperf.txt" | tail -1 | awk -F', ' '{printf "%.0f", $6}')
ratio=$(awk -v a="${drain_rate[this]}" -v b="$perf_rate" 'BEGIN { printf "%.2f", a / b }')

# -- Phase 2: freshness at a fixed input rate -------------------------------------------------
# Analytics caught up on a live topic, the simulator at FRESH_RATE events/s; analytics measures
# each record from its Kafka timestamp to its flush landing (aggregates durable and visible).
# Twice, in this order: the baseline writes every session's document at every flush (the
# layout before session checkpoints, ANALYTICS_SESSION_CHECKPOINT_SECONDS=0), then the
# default. Each gets a fresh emulator and its own warm-up.
# fresh NAME: one freshness run; its figures in fresh_<field>[NAME].
declare -A fresh_p50 fresh_p99 fresh_wpe fresh_per_doc fresh_flush fresh_events fresh_cpu fresh_journal
fresh() {
  local t="$RUN-fresh-$1" m="$WORK/analytics-fresh-$1.metrics" e0 e1
  new_topic "$t"; new_topic "$t-warm"
  fresh_emulator
  log "$1: warm-up at $FRESH_RATE events/s for 15s"
  live "$t-warm" 15
  stop_tracked "$WORK/analytics.pid" 60
  log "$1: freshness at $FRESH_RATE events/s for ${FRESH_SECONDS}s"
  read -r e0 _ <<< "$(cpu_all)"
  live "$t" "$FRESH_SECONDS"
  read -r e1 _ <<< "$(cpu_all)"
  curl -sf "http://$ADMIN_ADDR/metrics" > "$m"
  fresh_cpu[$1]="$(awk -v a="$e0" -v b="$e1" 'BEGIN { print b - a }') $(cpu_of "$WORK/analytics.pid")"
  stop_tracked "$WORK/analytics.pid" 60
  fresh_p50[$1]=$(awk '/^analytics_freshness_seconds\{quantile="0.5"\}/ {print $2}' "$m")
  fresh_p99[$1]=$(awk '/^analytics_freshness_seconds\{quantile="0.99"\}/ {print $2}' "$m")
  fresh_events[$1]=$(value delivered "$WORK/sim-$t.txt")
  fresh_wpe[$1]=$(awk -v w="$(value analytics_firestore_writes_total "$m")" -v n="${fresh_events[$1]}" 'BEGIN { if (n) printf "%.3f", w / n }')
  fresh_per_doc[$1]=$(value analytics_doc_writes_per_second_max "$m")
  fresh_journal[$1]="$(value analytics_journalled_flushes_total "$m")"
  fresh_journal[$1]="${fresh_journal[$1]:-?}/$(value analytics_flushes_total "$m")"
  fresh_flush[$1]=$(awk '$1 == "analytics_flush_seconds_sum" {s=$2} $1 == "analytics_flush_seconds_count" {n=$2} END {if (n) printf "%.2f", s / n}' "$m")
}
if [[ -n ${BENCH_BASELINE_BIN:-} ]]; then
  baseline_is="another build, $BENCH_BASELINE_BIN, with its defaults"
  ANALYTICS_BIN=$BENCH_BASELINE_BIN fresh baseline
else
  baseline_is="every session's document at every flush, ANALYTICS_SESSION_CHECKPOINT_SECONDS=0"
  ANALYTICS_SESSION_CHECKPOINT_SECONDS=0 fresh baseline
fi
fresh checkpointed

# per_event SECONDS EVENTS: microseconds per event.
per_event() { awk -v s="$1" -v n="$2" 'BEGIN { if (n) printf "%.1f", s * 1e6 / n; else print "?" }'; }
# work METRICS EVENTS: where the database work went, per event (see analytics' /metrics).
work() {
  awk -v n="$2" '
    function label(s) { sub(/^[^"]*"/, "", s); sub(/".*/, "", s); return s }
    /^analytics_flush_phase_seconds_total\{/ { phases = phases sprintf(" %s %.1f", label($1), $2 * 1e6 / n) }
    /^analytics_apply_commit_seconds_total\{/ { commits = commits sprintf(" %s %.1f", label($1), $2 * 1e6 / n) }
    /^analytics_applied_documents_total\{/ { docs = docs sprintf(" %s %.3f", label($1), $2 / n) }
    $1 == "analytics_session_load_seconds_total" { loads = sprintf("%.1f", $2 * 1e6 / n) }
    $1 == "analytics_journal_bytes_total" { bytes = sprintf("%.0f", $2 / n) }
    $1 == "analytics_shards_read_total" { read = $2 }
    $1 == "analytics_shards_written_whole_total" { whole = $2 }
    $1 == "analytics_sessions_written_whole_total" { sessions = $2 }
    END {
      printf "    flush wall time, us/event:%s\n", phases
      printf "    apply commits (summed over concurrent commits, by main kind), us/event:%s\n", commits
      printf "    documents applied per event:%s\n", docs
      printf "    session reads %s us/event, journal %s bytes/event\n", loads, bytes
      printf "    counter shards read for their totals %d, written whole %d; session documents written whole %d\n", read, whole, sessions
    }' "$1"
}

cat <<REPORT

== bench-analytics ($(nproc) cores, Kafka $KAFKA_VERSION, SASL_SSL + SCRAM-SHA-256, Firestore emulator) ==
analytics            $events events in ${drain_secs[this]}s: ${drain_rate[this]} events/s to durable aggregates + persisted offsets (from process start)
ConsumerPerformance  $perf_rate records/s (same topic, same security)
ratio                $ratio (target >= 0.50, and >= 20000 events/s)
$(for k in "${drains[@]}"; do
  [[ $k == baseline ]] && echo "-- draining with the baseline build, $BENCH_BASELINE_BIN --" || { [[ ${#drains[@]} -gt 1 ]] && echo "-- draining with this build --"; }
  cat <<DRAIN
drained in           ${drain_secs[$k]}s, ${drain_rate[$k]} events/s
cpu during the drain  (until every session is written too) emulator ${drain_emu[$k]} s (serving ${drain_serve[$k]}, GC ${drain_gc[$k]}, JIT compilers ${drain_jit[$k]}), analytics ${drain_cpu[$k]} s, 3 brokers ${drain_brokers[$k]} s
cpu per event        emulator $(per_event "${drain_emu[$k]}" "$events") us (without its JIT compilers $(per_event "$(awk -v a="${drain_emu[$k]}" -v b="${drain_jit[$k]}" 'BEGIN { print a - b }')" "$events") us), analytics $(per_event "${drain_cpu[$k]}" "$events") us; ConsumerPerformance $(per_event "$perf_cpu" "$events") us per record
where the work goes (drain)
$(work "$WORK/analytics-$k.metrics" "$events")
Firestore writes     ${drain_writes[$k]} ($(awk -v w="${drain_writes[$k]}" -v n="$events" 'BEGIN { printf "%.4f", w / n }') per event; target <= 0.05; floor $(awk -v s="$expect_started" -v n="$events" 'BEGIN { printf "%.4f", s / n }'): one sessions_history write per session)
max writes/doc/s     ${drain_per_doc[$k]} while draining (sustained over 10 s; target <= ~1)
peak RSS             ${drain_rss[$k]} MiB
lifetime counters    exact: ${drain_exact[$k]}
DRAIN
done)
$([[ ${#drains[@]} -gt 1 ]] && printf 'this build / baseline  emulator CPU per event %s (without JIT %s), analytics CPU per event %s (target <= 0.5 each)\n' \
  "$(awk -v a="${drain_emu[this]}" -v b="${drain_emu[baseline]}" 'BEGIN { printf "%.2f", a / b }')" \
  "$(awk -v a="${drain_emu[this]}" -v ja="${drain_jit[this]}" -v b="${drain_emu[baseline]}" -v jb="${drain_jit[baseline]}" 'BEGIN { printf "%.2f", (a - ja) / (b - jb) }')" \
  "$(awk -v a="${drain_cpu[this]}" -v b="${drain_cpu[baseline]}" 'BEGIN { printf "%.2f", a / b }')")
freshness at $FRESH_RATE/s over ${FRESH_SECONDS}s, Kafka timestamp to durable aggregate (target p99 < 2 s):
$(for k in baseline checkpointed; do
  read -r ecpu acpu <<< "${fresh_cpu[$k]}"
  printf '  %-13s p50 %ss, p99 %ss, mean flush %ss (%s journalled), %s Firestore writes/event, max %s writes/doc/s, cpu/event emulator %s us, analytics %s us\n' \
    "$k" "${fresh_p50[$k]:-?}" "${fresh_p99[$k]:-?}" "${fresh_flush[$k]:-?}" "${fresh_journal[$k]:-?}" "${fresh_wpe[$k]:-?}" "${fresh_per_doc[$k]:-?}" \
    "$(per_event "$ecpu" "${fresh_events[$k]}")" "$(per_event "$acpu" "${fresh_events[$k]}")"
done)
  (baseline: $baseline_is; checkpointed: this build's default)
$(for k in baseline checkpointed; do echo "  where the work goes at $FRESH_RATE/s, $k"; work "$WORK/analytics-fresh-$k.metrics" "${fresh_events[$k]}"; done)
REPORT
