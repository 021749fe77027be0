#!/usr/bin/env bash
# Benchmark: analytics with 1, 2 and 3 instances in one run, on a 12-partition topic at a
# fixed rate, every Firestore write seen by the test kit's recording proxy
# (firestore-recorder) between the instances and the emulator. Prints per instance count:
# events/s persisted, Firestore writes per event, and the documents written most often
# within any 10 s window (Firestore's limit is about one sustained write per second per
# document, so 10 per window). A topic and a Firestore project per step, on one emulator
# warmed up first (a JVM's first tens of seconds run interpreted code).
#   SCALE_RATE=5000 SCALE_SECONDS=60 SCALE_INSTANCES="1 2 3" scripts/bench-scale.sh
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
source "$(dirname "$0")/lib/bench.sh"
cd "$REPO_ROOT"

RATE="${SCALE_RATE:-5000}"
SECONDS_LIVE="${SCALE_SECONDS:-60}"
INSTANCES="${SCALE_INSTANCES:-1 2 3}"
PARTITIONS=12
RUN="scale-$(date +%s)"
WORK="$LOCAL_DIR/bench-scale"
bench_setup
log "building (release): simulator, analytics, firestore-recorder"
# Each binary named: `--bin` applies to every package selected, so `-p analytics --bin
# firestore-recorder` left analytics unbuilt: earlier runs measured whatever build was there.
cargo build --release --quiet -p simulator -p analytics -p testkit \
  --bin simulator --bin analytics --bin firestore-recorder
fresh_emulator
log "warm-up: one instance, $RATE events/s for 20s"
new_topic "$RUN-warm" "$PARTITIONS"
GCLOUD_PROJECT=$RUN-warm EVENTS_TOPIC=$RUN-warm DLQ_TOPIC=$RUN-warm-dlq ANALYTICS_GROUP=$RUN-warm \
  ANALYTICS_ADMIN_ADDR=127.0.0.1:9470 start_analytics "$WORK/analytics-warm.pid" "$WORK/analytics-warm.log" admin
sleep 5
target/release/simulator --topic "$RUN-warm" --users 1000 --rate "$RATE" --duration 20s --progress-seconds 3600 2> /dev/null
stop_tracked "$WORK/analytics-warm.pid" 60

declare -A rate_of wpe_of hot_of exact_of fresh_of
for n in $INSTANCES; do
  t="$RUN-n$n"
  new_topic "$t" "$PARTITIONS"
  rm -f "$WORK/recorder-$n.txt"
  start_tracked "$WORK/recorder.pid" "firestore-recorder" "$WORK/recorder-$n.txt" \
    target/release/firestore-recorder --upstream "$FIRESTORE_EMULATOR_HOST" --only "projects/$t/"
  for _ in $(seq 50); do grep -q '^listening' "$WORK/recorder-$n.txt" 2>/dev/null && break; sleep 0.1; done
  proxy=$(awk '/^listening/ {print $2; exit}' "$WORK/recorder-$n.txt")
  [[ -n $proxy ]] || die "the recorder did not start"
  log "$n instance(s): $RATE events/s for ${SECONDS_LIVE}s on $PARTITIONS partitions, through the recorder at $proxy"
  for i in $(seq "$n"); do
    ! (exec 3<>"/dev/tcp/127.0.0.1/$((9470 + i))") 2>/dev/null || die "port $((9470 + i)) is taken (an analytics left running?)"
    FIRESTORE_EMULATOR_HOST=$proxy GCLOUD_PROJECT=$t EVENTS_TOPIC=$t DLQ_TOPIC=$t-dlq ANALYTICS_GROUP=$t \
      ANALYTICS_ADMIN_ADDR=127.0.0.1:$((9470 + i)) \
      start_analytics "$WORK/analytics-$i.pid" "$WORK/analytics-$n-$i.log" admin
  done
  sleep 8 # the group forms
  t0=$(date +%s.%N)
  target/release/simulator --topic "$t" --users 1000 --rate "$RATE" --duration "${SECONDS_LIVE}s" \
    --progress-seconds 3600 2> "$WORK/sim-$n.txt"
  delivered=$(awk '$1 == "delivered" {print $2}' "$WORK/sim-$n.txt")
  # Caught up: every instance's persisted records sum to what was delivered.
  deadline=$((SECONDS + 120))
  while :; do
    persisted=0
    for i in $(seq "$n"); do
      p=$(metric "127.0.0.1:$((9470 + i))" analytics_persisted_records_total)
      persisted=$((persisted + ${p:-0}))
    done
    (( persisted >= delivered || SECONDS > deadline )) && break
    sleep 0.5
  done
  t1=$(date +%s.%N)
  fresh_of[$n]=$(for i in $(seq "$n"); do
    curl -sf "http://127.0.0.1:$((9470 + i))/metrics" | awk '/^analytics_freshness_seconds\{quantile="0.99"\}/ {print $2}'
  done | sort -g | tail -1)
  rate_of[$n]=$(awk -v p="$persisted" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", p / (b - a) }')
  for i in $(seq "$n"); do stop_tracked "$WORK/analytics-$i.pid" 60; done
  stop_tracked "$WORK/recorder.pid" 30
  writes=$(awk '$1 == "writes" {print $2}' "$WORK/recorder-$n.txt")
  wpe_of[$n]=$(awk -v w="$writes" -v d="$delivered" 'BEGIN { printf "%.4f", w / d }')
  hot_of[$n]=$(awk '$1 == "hottest" {printf "      %s: %s writes in 10 s (%s/s)\n", $2, $3, $4}' "$WORK/recorder-$n.txt")
  got=$(GCLOUD_PROJECT=$t target/release/analytics report --json --top 0 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[-1]["sessions_started"])')
  want=$(awk '$1 == "session_started" {print $2}' "$WORK/sim-$n.txt")
  exact_of[$n]=$([[ $got == "$want" ]] && echo "yes ($got sessions)" || echo "NO ($got of $want sessions)")
  log "$n instance(s): ${rate_of[$n]} events/s, ${wpe_of[$n]} writes/event"
done

echo
echo "== bench-scale ($(nproc) cores, $PARTITIONS partitions, $RATE events/s for ${SECONDS_LIVE}s, Firestore emulator behind firestore-recorder) =="
for n in $INSTANCES; do
  echo "  $n instance(s): ${rate_of[$n]} events/s persisted (from the simulator's start to caught up), ${wpe_of[$n]} Firestore writes per event, freshness p99 ${fresh_of[$n]:-?}s (the slowest instance), lifetime sessions exact: ${exact_of[$n]}"
  echo "    hottest documents (target <= 10 writes in any 10 s):"
  echo "${hot_of[$n]}"
done
